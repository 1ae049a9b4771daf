"""Class 6, duplicate mutable accounts: one account passed in two roles of an instruction, or
one position in two instructions of a transaction.

Swaps A→A; the traded custody as its own collateral where the side forbids it; a vault as the
user's funding or receiving account; the LP token account as the funding or receiving account;
the funding account as the receiving account; one vault or oracle in two roles; a position
opened or closed twice in one transaction.
"""

from __future__ import annotations

import pytest
from adversarial_cases import (
    Case,
    case,
    close_ix,
    custody,
    liquidate_ix,
    open_ix,
    oracle,
    remove_collateral_ix,
    replace,
    run_cases,
    vault,
)
from adversary import ETH, USD, USDC, Attack, World, honest_instructions
from solders.instruction import Instruction

from perpool import pda, trade
from perpool.trade import LONG, SHORT, Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(6)]

TOKEN_REFUSAL = "owner does not match"


async def same_account_cases(world: World) -> list[Case]:
    env, client, me = world.env, world.client, world.attacker
    honest = {h.label: h.ix for h in await honest_instructions(world)}
    signers = [me.wallet]
    out: list[Case] = []

    def add(label: str, ix: Instruction, error: str) -> None:
        out.append(case(label, ix, signers, error=error))

    def refused(label: str, ix: Instruction) -> None:
        out.append(case(label, ix, signers, contains=TOKEN_REFUSAL))

    # Swaps from a custody into itself.
    for symbol, amount in (
        ("SOL", 10**9),
        ("ETH", ETH // 10),
        ("USDC", 100 * USDC),
        ("USDT", 100 * USDC),
        ("ETHSQ", ETH),
    ):
        ix = trade.swap_ix(
            client,
            me.key,
            env.pool,
            env.mint(symbol),
            env.mint(symbol),
            amount,
            funding_account=me.accounts[symbol],
            receiving_account=me.accounts[symbol],
        )
        add(f"swap {symbol}->{symbol}", ix, "SameCustody")
    # The traded custody as its own collateral where the side needs another one.
    for mint, side, error in (
        ("SOL", SHORT, "InvalidShortCollateral"),
        ("ETH", SHORT, "InvalidShortCollateral"),
        ("USDC", SHORT, "InvalidShortCollateral"),
        ("ETHSQ", LONG, "InvalidPayoffCollateral"),
        ("ETHSQ", SHORT, "InvalidPayoffCollateral"),
    ):
        market = Market(env.pool, env.mint(mint), env.mint(mint), side)
        collateral = {"SOL": 2 * 10**9, "ETH": ETH // 10, "USDC": 200 * USDC, "ETHSQ": ETH}
        ix = trade.open_position_ix(
            client,
            me.key,
            market,
            collateral_amount=collateral[mint],
            size_usd=1_000 * USD,
            funding_account=me.accounts[mint],
        )
        add(f"open a {side} {mint} with {mint} as its own collateral", ix, error)
    # A short's position closed with its traded custody as the collateral custody.
    short_sol = world.markets["short_sol"]
    add(
        "close the victim-style short SOL with SOL as the collateral custody",
        replace(
            client,
            "close_position",
            close_ix(world, world.victim, short_sol, 5_000),
            {
                "owner": me.key,
                "receiving_account": me.accounts["SOL"],
                "collateral_custody": custody(world, "SOL"),
                "collateral_custody_oracle": oracle(world, "SOL"),
                "collateral_custody_token_account": vault(world, "SOL"),
            },
        ),
        "ConstraintSeeds",
    )

    # A vault as the user's funding account: the token program refuses (the attacker does not
    # own the vault).
    long_sol = world.markets["long_sol"]
    refused(
        "open short_sol funded from the USDC vault",
        replace(
            client,
            "open_position",
            open_ix(world, me, short_sol),
            {"funding_account": vault(world, "USDC")},
        ),
    )
    refused(
        "add collateral to long_sol from the SOL vault",
        replace(
            client,
            "add_collateral",
            honest["add_collateral long_sol"],
            {"funding_account": vault(world, "SOL")},
        ),
    )
    refused(
        "add_liquidity USDC from the USDC vault",
        replace(
            client,
            "add_liquidity",
            honest["add_liquidity USDC"],
            {"funding_account": vault(world, "USDC")},
        ),
    )
    refused(
        "swap USDC->USDT funded from the USDC vault",
        replace(
            client, "swap", honest["swap USDC->USDT"], {"funding_account": vault(world, "USDC")}
        ),
    )

    # The LP token account, funding and receiving accounts in each other's roles.
    lp_account = world.lp_accounts["attacker"]
    add(
        "add_liquidity USDC minting into the USDC funding account",
        replace(
            client,
            "add_liquidity",
            honest["add_liquidity USDC"],
            {"lp_token_account": me.accounts["USDC"]},
        ),
        "InvalidTokenAccount",
    )
    add(
        "add_liquidity USDC funded from the LP token account",
        replace(
            client, "add_liquidity", honest["add_liquidity USDC"], {"funding_account": lp_account}
        ),
        "InvalidTokenAccount",
    )
    add(
        "remove_liquidity USDC paying into the LP token account",
        replace(
            client,
            "remove_liquidity",
            honest["remove_liquidity USDC"],
            {"receiving_account": lp_account},
        ),
        "InvalidTokenAccount",
    )
    add(
        "remove_liquidity USDC burning from the USDC receiving account",
        replace(
            client,
            "remove_liquidity",
            honest["remove_liquidity USDC"],
            {"lp_token_account": me.accounts["USDC"]},
        ),
        "InvalidTokenAccount",
    )
    add(
        "swap USDC->USDT paying into the funding account",
        replace(
            client, "swap", honest["swap USDC->USDT"], {"receiving_account": me.accounts["USDC"]}
        ),
        "InvalidTokenAccount",
    )
    # One vault or oracle in two roles.
    add(
        "swap USDC->USDT with USDC's vault as both vaults",
        replace(
            client,
            "swap",
            honest["swap USDC->USDT"],
            {"dispensing_custody_token_account": vault(world, "USDC")},
        ),
        "InvalidTokenAccount",
    )
    add(
        "swap USDC->USDT with USDC's oracle for both custodies",
        replace(
            client,
            "swap",
            honest["swap USDC->USDT"],
            {"dispensing_custody_oracle": oracle(world, "USDC")},
        ),
        "InvalidOracleAccount",
    )
    add(
        "open short_sol with the funding account as the vault",
        replace(
            client,
            "open_position",
            open_ix(world, me, short_sol),
            {"collateral_custody_token_account": me.accounts["USDC"]},
        ),
        "InvalidTokenAccount",
    )
    add(
        "open short_sol with USDC's oracle for SOL too",
        replace(
            client,
            "open_position",
            open_ix(world, me, short_sol),
            {"custody_oracle": oracle(world, "USDC")},
        ),
        "InvalidOracleAccount",
    )
    add(
        "liquidate the victim's long_sol, owner's part into the SOL vault",
        replace(
            client,
            "liquidate",
            liquidate_ix(world, me, long_sol, world.victim),
            {"owner_receiving_account": vault(world, "SOL")},
        ),
        "InvalidTokenAccount",
    )

    # A vault (or any token account the transfer authority owns) as the receiving account of a
    # payout: the token program would move the tokens from the vault to itself, the books would
    # record them as paid out and the vault would drift above them.
    authority_owned = await env.mints["SOL"].create_account(pda.transfer_authority())
    admin = env.admin
    for label, name, ix, key, signer in (
        (
            "close half of long_sol paying into the SOL vault",
            "close_position",
            close_ix(world, me, long_sol, 5_000),
            vault(world, "SOL"),
            me.wallet,
        ),
        (
            "close half of long_sol paying into a SOL account the transfer authority owns",
            "close_position",
            close_ix(world, me, long_sol, 5_000),
            authority_owned,
            me.wallet,
        ),
        (
            "remove collateral from long_sol into the SOL vault",
            "remove_collateral",
            remove_collateral_ix(world, me, long_sol),
            vault(world, "SOL"),
            me.wallet,
        ),
        (
            "remove_liquidity USDC into the USDC vault",
            "remove_liquidity",
            honest["remove_liquidity USDC"],
            vault(world, "USDC"),
            me.wallet,
        ),
        (
            "swap USDC->USDT paying into the USDT vault",
            "swap",
            honest["swap USDC->USDT"],
            vault(world, "USDT"),
            me.wallet,
        ),
        (
            "liquidate the victim's long_sol, reward into the SOL vault",
            "liquidate",
            liquidate_ix(world, me, long_sol, world.victim),
            vault(world, "SOL"),
            me.wallet,
        ),
        (
            "withdraw USDC protocol fees into the USDC vault",
            "withdraw_protocol_fees",
            world.client.withdraw_protocol_fees_ix(
                env.pool, env.mint("USDC"), 1, vault(world, "USDC"), admin.pubkey()
            ),
            vault(world, "USDC"),
            admin,
        ),
        (
            "remove_custody USDT sweeping its vault into itself",
            "remove_custody",
            world.client.remove_custody_ix(
                env.pool, env.mint("USDT"), vault(world, "USDT"), admin.pubkey()
            ),
            vault(world, "USDT"),
            admin,
        ),
    ):
        out.append(
            case(
                label,
                replace(client, name, ix, {"receiving_account": key}),
                [signer],
                error="ReceivingAccountIsVault",
                watch=[authority_owned],
            )
        )
    add(
        "close half of long_sol paying into other's SOL vault (another mint)",
        replace(
            client,
            "close_position",
            close_ix(world, me, long_sol, 5_000),
            {"receiving_account": vault(world, "SOL", pool="other")},
        ),
        "InvalidTokenAccount",
    )
    return out


async def same_position_twice_cases(world: World) -> list[Case]:
    """One position in two instructions of one transaction."""
    me = world.attacker
    out: list[Case] = []
    for key in ("short_sol", "long_eth", "long_ethsq"):
        market = world.markets[key]
        ix = open_ix(world, me, market)
        out.append(
            case(f"open {key} twice in one transaction", [ix, ix], [me.wallet], contains="in use")
        )
    close = close_ix(world, me, world.markets["long_sol"])
    out.append(
        case(
            "close long_sol twice in one transaction",
            [close, close],
            [me.wallet],
            error="AccountNotInitialized",
        )
    )
    return out


async def test_one_account_in_two_roles(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await same_account_cases(world)) >= 30


async def test_one_position_twice_in_a_transaction(world: World, attack: Attack) -> None:
    await run_cases(attack, await same_position_twice_cases(world))
