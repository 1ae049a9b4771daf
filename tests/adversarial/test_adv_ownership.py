"""Class 2, ownership: the attacker acts on the victim's positions, spends the victim's tokens
or LP tokens, or sends a victim's payout (or a protocol payout) to itself, across all five
markets; and a real liquidation of the victim pays the victim, not the liquidator."""

from __future__ import annotations

import pytest
from adversarial_cases import (
    Case,
    add_collateral_ix,
    case,
    close_ix,
    collateral_of,
    liquidate_ix,
    open_ix,
    position_of,
    remove_collateral_ix,
    replace,
    run_cases,
)
from adversary import SOL, USD, USDC, Attack, World, honest_instructions
from pool_env import TokenSpec
from trade_support import (
    add_pool,
    events,
    long_market,
    new_trader,
    open_position,
    post_price,
    provide_liquidity,
)

from perpool import lp, trade
from perpool.trade import Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(2)]

TOKEN_REFUSAL = "owner does not match"
"""The token program's refusal when the signer does not own the source account."""


async def victim_position_cases(world: World) -> list[Case]:
    """The attacker signs as owner and names the victim's position, for every market and every
    position instruction; or liquidates it while healthy, or with the owner's part or rent
    redirected to itself."""
    client, thief, victim = world.client, world.attacker, world.victim
    out: list[Case] = []
    for key, market in world.markets.items():
        theirs = position_of(world, market, victim)
        for what, name, ix in (
            ("close", "close_position", close_ix(world, thief, market)),
            ("close half of", "close_position", close_ix(world, thief, market, 5_000)),
            (
                "remove collateral from",
                "remove_collateral",
                remove_collateral_ix(world, thief, market),
            ),
            ("add collateral to", "add_collateral", add_collateral_ix(world, thief, market)),
        ):
            out.append(
                case(
                    f"{what} the victim's {key} position as the attacker",
                    replace(client, name, ix, {"position": theirs}),
                    [thief.wallet],
                    error="ConstraintSeeds",
                )
            )
        honest = liquidate_ix(world, thief, market, victim)
        symbol = collateral_of(world, market)
        out += [
            case(
                f"liquidate the victim's healthy {key} position",
                honest,
                [thief.wallet],
                error="NotLiquidatable",
            ),
            case(
                f"liquidate the victim's {key} position, owner's part to the attacker",
                replace(
                    client, "liquidate", honest, {"owner_receiving_account": thief.accounts[symbol]}
                ),
                [thief.wallet],
                error="InvalidTokenAccount",
            ),
            case(
                f"liquidate the victim's {key} position, its rent to the attacker",
                replace(client, "liquidate", honest, {"owner": thief.key}),
                [thief.wallet],
                error="InvalidPosition",
            ),
        ]
    return out


async def victim_funds_cases(world: World) -> list[Case]:
    """The attacker spends tokens from the victim's accounts (open, add collateral, deposit,
    swap) or burns the victim's LP tokens for itself: the token program refuses the transfer
    because the attacker does not own the source."""
    env, client, thief, victim = world.env, world.client, world.attacker, world.victim
    out: list[Case] = []
    for key, market in world.markets.items():
        if key == "long_sol":
            continue  # the attacker already holds this one
        symbol = collateral_of(world, market)
        out.append(
            case(
                f"open {key} paid from the victim's {symbol}",
                replace(
                    client,
                    "open_position",
                    open_ix(world, thief, market),
                    {"funding_account": victim.accounts[symbol]},
                ),
                [thief.wallet],
                contains=TOKEN_REFUSAL,
            )
        )
    out.append(
        case(
            "add collateral to the attacker's long_sol from the victim's SOL",
            replace(
                client,
                "add_collateral",
                add_collateral_ix(world, thief, world.markets["long_sol"]),
                {"funding_account": victim.accounts["SOL"]},
            ),
            [thief.wallet],
            contains=TOKEN_REFUSAL,
        )
    )
    for honest in await honest_instructions(world):
        symbol = honest.label.split()[-1]
        if honest.name == "add_liquidity":
            out.append(
                case(
                    f"deposit the victim's {symbol} for the attacker's LP tokens",
                    replace(
                        client,
                        honest.name,
                        honest.ix,
                        {"funding_account": victim.accounts[symbol]},
                    ),
                    honest.signers,
                    contains=TOKEN_REFUSAL,
                )
            )
        elif honest.name == "remove_liquidity":
            out.append(
                case(
                    f"burn the victim's LP tokens for {symbol} to the attacker",
                    replace(
                        client,
                        honest.name,
                        honest.ix,
                        {"lp_token_account": world.lp_accounts["victim"]},
                    ),
                    honest.signers,
                    contains=TOKEN_REFUSAL,
                )
            )
        elif honest.name == "swap" and honest.label == "swap USDC->USDT":
            out.append(
                case(
                    "swap the victim's USDC into the attacker's USDT",
                    replace(
                        client, honest.name, honest.ix, {"funding_account": victim.accounts["USDC"]}
                    ),
                    honest.signers,
                    contains=TOKEN_REFUSAL,
                )
            )
    # The LP tokens burnt are the victim's and so is the receiving account: still refused.
    out.append(
        case(
            "burn the victim's LP tokens for USDC to the victim, signed by the attacker",
            await lp.remove_liquidity_ix(
                client,
                thief.key,
                env.pool,
                env.mint("USDC"),
                10 * USD,
                receiving_account=victim.accounts["USDC"],
                lp_token_account=world.lp_accounts["victim"],
            ),
            [thief.wallet],
            contains=TOKEN_REFUSAL,
        )
    )
    return out


async def protocol_cases(world: World) -> list[Case]:
    """Payouts that belong to the protocol or the oracle: the attacker names itself admin or
    oracle authority."""
    env, client, thief = world.env, world.client, world.attacker
    out = [
        case(
            f"withdraw {symbol} protocol fees to the attacker, signed as admin",
            client.withdraw_protocol_fees_ix(
                env.pool, env.mint(symbol), 1, thief.accounts[symbol], thief.key
            ),
            [thief.wallet],
            error="NotAMultisigSigner",
        )
        for symbol in ("SOL", "USDC")
    ]
    out.append(
        case(
            "approve an admin instruction as the attacker",
            client.approve_ix(thief.key, bytes(32)),
            [thief.wallet],
            error="NotAMultisigSigner",
        )
    )
    spec = env.specs["SOL"]
    out.append(
        case(
            "post a SOL price as the attacker",
            client.set_price_ix(
                env.pool,
                env.mint("SOL"),
                thief.key,
                price=spec.price * 2,
                expo=spec.expo,
                conf=0,
                ema=spec.price * 2,
                publish_time=await env.now(),
            ),
            [thief.wallet],
            error="NotOracleAuthority",
        )
    )
    return out


async def test_attacker_on_the_victims_positions(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await victim_position_cases(world)) == 35


async def test_attacker_spends_the_victims_tokens(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await victim_funds_cases(world)) >= 14


async def test_protocol_payouts_to_the_attacker(world: World, attack: Attack) -> None:
    await run_cases(attack, await protocol_cases(world))


async def test_liquidating_the_victim_pays_the_victim(world: World, attack: Attack) -> None:
    """In a pool of its own, the victim's long becomes liquidatable: redirecting the owner's part
    or the rent is still refused, and the real liquidation pays the liquidator only its reward
    while the victim keeps the rest and the position's rent."""
    sol = TokenSpec("SOL", 9, False, 100_00, -2)
    usdc = TokenSpec("USDC", 6, True, 1_000_000, -6)
    env = await add_pool(world.env, "own_liq", (sol, usdc))
    await env.configure("SOL", max_price_age_sec=3_600, liquidation_reward_bps=10)
    await provide_liquidity(env, "SOL", 1_000 * SOL)
    await provide_liquidity(env, "USDC", 100_000 * USDC)
    victim = await new_trader(env, SOL=10 * SOL)
    thief = await new_trader(env, SOL=SOL)
    market: Market = long_market(env, "SOL")
    await open_position(env, victim, market, collateral=SOL, size_usd=4_000 * USD)
    # -2.2%: an $88 loss on $100 of collateral at 40x leaves $12, under the maintenance margin
    # ($16 at 250x) but above zero, so the owner has something left to receive.
    await post_price(env, "SOL", 97_80)
    honest = trade.liquidate_ix(
        env.client,
        thief.key,
        market,
        victim.key,
        receiving_account=thief.accounts["SOL"],
        owner_receiving_account=victim.accounts["SOL"],
    )
    watch = [victim.key, thief.key, *victim.accounts.values(), *thief.accounts.values()]
    await attack.rejected(
        "liquidate the victim's liquidatable long, owner's part to the attacker",
        [
            replace(
                env.client, "liquidate", honest, {"owner_receiving_account": thief.accounts["SOL"]}
            )
        ],
        [thief.wallet],
        error="InvalidTokenAccount",
        watch=watch,
    )
    await attack.rejected(
        "liquidate the victim's liquidatable long, its rent to the attacker",
        [replace(env.client, "liquidate", honest, {"owner": thief.key})],
        [thief.wallet],
        error="InvalidPosition",
        watch=watch,
    )
    position = trade.position_key(env.client, market, victim.key)
    conn = env.client.connection
    rent = (await conn.get_balance(position)).value
    assert rent > 0
    before = {
        "victim_sol": await env.balance(victim.accounts["SOL"]),
        "thief_sol": await env.balance(thief.accounts["SOL"]),
        "victim_lamports": (await conn.get_balance(victim.key)).value,
        "thief_lamports": (await conn.get_balance(thief.key)).value,
    }
    async with attack.holds("liquidating the victim pays the liquidator only its reward"):
        signature = await env.client.send([honest], [thief.wallet])
        (event,) = [e for e in await events(env, signature) if e.name == "PositionLiquidated"]
        reward, owner_amount = event.data.reward_amount, event.data.owner_amount
        # A $4,000 position at 0.1% reward: at most $4 of SOL at $97.80 to the liquidator.
        assert 0 < reward <= 4 * USD * 10**4 // 978 + 1, reward
        assert owner_amount > 0, event.data
        assert await env.balance(thief.accounts["SOL"]) - before["thief_sol"] == reward
        assert await env.balance(victim.accounts["SOL"]) - before["victim_sol"] == owner_amount
        assert (await conn.get_balance(position)).value == 0
        # The admin pays the fee here: the owner gets exactly the rent, the liquidator none of it.
        assert (await conn.get_balance(victim.key)).value - before["victim_lamports"] == rent
        assert (await conn.get_balance(thief.key)).value == before["thief_lamports"]
