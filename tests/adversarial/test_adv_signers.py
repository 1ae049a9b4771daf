"""Class 1, missing signer: every instruction that needs an authority, sent with that
authority marked as not signing, fails with ``AccountNotSigner`` and changes nothing."""

from __future__ import annotations

import pytest
from adversary import SOL, USDC, Attack, World, honest_instructions, without_signature
from rejections import simulate_error
from trade_support import new_trader, without_signer

from perpool import pda, trade

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(1)]


async def test_honest_instructions_are_valid(world: World) -> None:
    """The baseline every corrupted case starts from: each honest instruction would succeed,
    so a rejection can only come from the corruption."""
    for honest in await honest_instructions(world):
        error = await simulate_error(world.client, [honest.ix], honest.signers)
        assert error is None, f"{honest.label}: {error}"


async def test_user_and_oracle_instructions_without_their_signer(
    world: World, attack: Attack
) -> None:
    for honest in await honest_instructions(world):
        if honest.authority is None:
            continue
        await attack.rejected(
            f"{honest.label} without {honest.name}'s authority signing",
            [without_signature(honest)],
            error="AccountNotSigner",
        )


async def test_victim_named_as_owner_without_signing(world: World, attack: Attack) -> None:
    """The attacker names the victim as owner (with the victim's accounts) and signs nothing
    for it: closes, collateral moves, liquidity withdrawals on the victim's behalf."""
    env, victim, thief = world.env, world.victim, world.attacker
    for key, market in world.markets.items():
        collateral = next(s for s in env.specs if env.mint(s) == market.collateral_mint)
        cases = {
            "close": trade.close_position_ix(
                world.client, victim.key, market, receiving_account=thief.accounts[collateral]
            ),
            "remove_collateral": trade.remove_collateral_ix(
                world.client,
                victim.key,
                market,
                10 * 10**6,
                receiving_account=thief.accounts[collateral],
            ),
            "add_collateral": trade.add_collateral_ix(
                world.client, victim.key, market, 1, funding_account=victim.accounts[collateral]
            ),
        }
        for what, ix in cases.items():
            await attack.rejected(
                f"{what} {key} as the victim, unsigned",
                [without_signer(ix, victim.key)],
                [thief.wallet],
                error="AccountNotSigner",
            )


async def test_admin_instructions_without_the_admin_signing(world: World, attack: Attack) -> None:
    env, client = world.env, world.client
    admin = env.admin.pubkey()
    fresh_mint = world.other.mint("SOL")
    receiving = await env.token_account(admin, "USDC")
    ixs = {
        "approve_admin_instruction": client.approve_ix(admin, bytes(32)),
        "add_pool": client.add_pool_ix("unsigned", admin),
        "add_custody": client.add_custody_ix(
            env.pool, fresh_mint, False, world.other.config("SOL"), admin
        ),
        "set_permissions": client.set_permissions_ix(
            {
                name: False
                for name in (
                    "allow_add_liquidity",
                    "allow_remove_liquidity",
                    "allow_open_position",
                    "allow_close_position",
                    "allow_collateral_change",
                    "allow_swap",
                    "allow_liquidation",
                )
            },
            admin,
        ),
        "set_custody_config": client.set_custody_config_ix(
            env.pool, env.mint("SOL"), env.config("SOL", max_leverage=1_000_000), admin
        ),
        "set_oracle_authority": client.set_oracle_authority_ix(world.attacker.key, admin),
        "withdraw_protocol_fees": client.withdraw_protocol_fees_ix(
            env.pool, env.mint("USDC"), 1, receiving, admin
        ),
        "remove_custody": client.remove_custody_ix(env.pool, env.mint("USDT"), receiving, admin),
        "remove_pool": client.remove_pool_ix(world.other.pool, admin),
    }
    for name, ix in ixs.items():
        await attack.rejected(
            f"{name} without the admin signing",
            [without_signer(ix, admin)],
            error="AccountNotSigner",
            watch=[pda.pool("unsigned"), receiving],
        )


async def test_liquidator_and_new_trader_without_signing(world: World, attack: Attack) -> None:
    env = world.env
    newcomer = await new_trader(env, SOL=SOL, USDC=1_000 * USDC)
    for key, market in world.markets.items():
        collateral = next(s for s in env.specs if env.mint(s) == market.collateral_mint)
        amount = SOL if collateral == "SOL" else 100 * USDC
        if collateral not in newcomer.accounts or collateral not in ("SOL", "USDC"):
            continue
        ix = trade.open_position_ix(
            world.client,
            newcomer.key,
            market,
            collateral_amount=amount,
            size_usd=200 * 10**6,
            funding_account=newcomer.accounts[collateral],
        )
        await attack.rejected(
            f"open {key} for a new trader, unsigned",
            [without_signer(ix, newcomer.key)],
            error="AccountNotSigner",
            watch=[*newcomer.accounts.values()],
        )
        liquidate = trade.liquidate_ix(
            world.client,
            world.attacker.key,
            market,
            world.victim.key,
            receiving_account=world.attacker.accounts[collateral],
            owner_receiving_account=world.victim.accounts[collateral],
        )
        await attack.rejected(
            f"liquidate {key} with the liquidator unsigned",
            [without_signer(liquidate, world.attacker.key)],
            error="AccountNotSigner",
        )
