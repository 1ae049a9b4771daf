"""Classes 3 and 4, account substitution and type cosplay.

Class 3: every pool-bound account of the trading, liquidity and crank instructions replaced by
a look-alike: the pool ``other`` (same tokens, its own mints), its custodies, oracles, vaults and
LP mint; another custody's oracle or vault in this pool; the wrong custody for the side (a long
with another token's collateral, a short with a non-stable, a payoff market with a non-stable);
the synthetic payoff market where tokens must move; accounts that do not exist.

Class 4: accounts of one type where another is expected: a Position, Pool, CustomOracle,
Multisig or Perpool where a Custody (or Pool, Position, Perpool, Multisig) is expected, a Mint
where a TokenAccount is expected and the reverse, wallets, token accounts and a program where
program accounts are expected.
"""

from __future__ import annotations

import pytest
from adversarial_cases import (
    Case,
    add_collateral_ix,
    case,
    close_ix,
    custody,
    liquidate_ix,
    open_ix,
    oracle,
    position_of,
    readonly,
    remaining,
    remove_collateral_ix,
    replace,
    run_cases,
    vault,
    with_remaining,
)
from adversary import ETH, USD, USDC, Attack, World, honest_instructions
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import lp, pda, trade
from perpool.program import PROGRAM_ID
from perpool.trade import LONG, SHORT, Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(3)]


async def _honest(world: World) -> dict[str, Instruction]:
    return {h.label: h.ix for h in await honest_instructions(world)}


async def substitution_cases(world: World) -> list[Case]:
    env, client, me = world.env, world.client, world.attacker
    honest = await _honest(world)
    other = world.other
    other_pool = pda.pool(other.pool)
    nowhere = Keypair().pubkey()
    signers = [me.wallet]
    out: list[Case] = []

    def add(label: str, ix: Instruction, error: str) -> None:
        out.append(case(label, ix, signers, error=error))

    # Position instructions on the attacker's own long SOL (the honest versions succeed).
    long_sol = world.markets["long_sol"]
    position_ixs = {
        "close_position": close_ix(world, me, long_sol, 5_000),
        "remove_collateral": remove_collateral_ix(world, me, long_sol),
        "add_collateral": add_collateral_ix(world, me, long_sol),
        "liquidate": liquidate_ix(world, me, long_sol, world.victim),
    }
    # The victim's long SOL for the liquidation (healthy: only a substitution could get past).
    position_ixs["liquidate"] = replace(
        client,
        "liquidate",
        position_ixs["liquidate"],
        {"position": position_of(world, long_sol, world.victim)},
    )
    for name, ix in position_ixs.items():
        with_oracle = name != "add_collateral"
        add(
            f"{name} long_sol in pool other",
            replace(client, name, ix, {"pool": other_pool}),
            "ConstraintSeeds",
        )
        add(
            f"{name} long_sol with other's SOL custody",
            replace(client, name, ix, {"custody": custody(world, "SOL", pool="other")}),
            "ConstraintSeeds",
        )
        add(
            f"{name} long_sol with the ETH custody",
            replace(client, name, ix, {"custody": custody(world, "ETH")}),
            "ConstraintSeeds",
        )
        add(
            f"{name} long_sol with other's SOL vault",
            replace(
                client,
                name,
                ix,
                {"collateral_custody_token_account": vault(world, "SOL", pool="other")},
            ),
            "InvalidTokenAccount",
        )
        add(
            f"{name} long_sol with the attacker's SOL account as the vault",
            replace(client, name, ix, {"collateral_custody_token_account": me.accounts["SOL"]}),
            "InvalidTokenAccount",
        )
        add(
            f"{name} long_sol with other's SOL oracle as the collateral oracle",
            replace(
                client, name, ix, {"collateral_custody_oracle": oracle(world, "SOL", pool="other")}
            ),
            "InvalidOracleAccount",
        )
        if with_oracle:
            add(
                f"{name} long_sol with the ETH oracle as the SOL oracle",
                replace(client, name, ix, {"custody_oracle": oracle(world, "ETH")}),
                "InvalidOracleAccount",
            )
            add(
                f"{name} long_sol with an account that does not exist as the SOL oracle",
                replace(client, name, ix, {"custody_oracle": nowhere}),
                "InvalidOracleAccount",
            )
    # The collateral custody of a long replaced by a stable (the position names SOL's).
    add(
        "close long_sol with USDC as the collateral custody",
        replace(
            client,
            "close_position",
            position_ixs["close_position"],
            {
                "receiving_account": me.accounts["USDC"],
                "collateral_custody": custody(world, "USDC"),
                "collateral_custody_oracle": oracle(world, "USDC"),
                "collateral_custody_token_account": vault(world, "USDC"),
            },
        ),
        "InvalidPosition",
    )
    # The victim's long ETH liquidated through the long SOL market's accounts.
    add(
        "liquidate the victim's long_eth through long_sol's accounts",
        replace(
            client,
            "liquidate",
            position_ixs["liquidate"],
            {"position": position_of(world, world.markets["long_eth"], world.victim)},
        ),
        "ConstraintSeeds",
    )

    # Opening with the wrong collateral custody for the side or the market.
    def opening(label: str, mint: str, collateral: str, side: str, error: str) -> None:
        market = Market(env.pool, env.mint(mint), env.mint(collateral), side)
        amount = {"SOL": 2 * 10**9, "ETH": ETH // 10, "USDC": 200 * USDC, "USDT": 200 * USDC}
        ix = trade.open_position_ix(
            client,
            me.key,
            market,
            collateral_amount=amount[collateral],
            size_usd=1_000 * USD,
            funding_account=me.accounts[collateral],
        )
        add(label, ix, error)

    # (The attacker already holds a long SOL, so these open longs in ETH.)
    opening("open a long ETH with USDC collateral", "ETH", "USDC", LONG, "InvalidLongCollateral")
    opening("open a long ETH with SOL collateral", "ETH", "SOL", LONG, "InvalidLongCollateral")
    opening("open a short SOL with ETH collateral", "SOL", "ETH", SHORT, "InvalidShortCollateral")
    opening("open a short ETH with SOL collateral", "ETH", "SOL", SHORT, "InvalidShortCollateral")
    opening(
        "open a short USDC (a stable) with USDT collateral",
        "USDC",
        "USDT",
        SHORT,
        "InvalidShortCollateral",
    )
    opening("open a long ETH² with ETH collateral", "ETHSQ", "ETH", LONG, "InvalidPayoffCollateral")
    opening(
        "open a short ETH² with SOL collateral", "ETHSQ", "SOL", SHORT, "InvalidPayoffCollateral"
    )
    short_sol = open_ix(world, me, world.markets["short_sol"])
    add(
        "open short_sol with other's USDC as the collateral custody",
        replace(
            client,
            "open_position",
            short_sol,
            {
                "collateral_custody": custody(world, "USDC", pool="other"),
                "funding_account": await other.token_account(me.key, "USDC"),
            },
        ),
        "ConstraintSeeds",
    )
    add(
        "open short_sol with other's USDC vault",
        replace(
            client,
            "open_position",
            short_sol,
            {"collateral_custody_token_account": vault(world, "USDC", pool="other")},
        ),
        "InvalidTokenAccount",
    )
    add(
        "open short_sol with the USDT oracle for USDC",
        replace(
            client, "open_position", short_sol, {"collateral_custody_oracle": oracle(world, "USDT")}
        ),
        "InvalidOracleAccount",
    )
    add(
        "open short_sol with a pool that does not exist",
        replace(client, "open_position", short_sol, {"pool": nowhere}),
        "AccountNotInitialized",
    )

    # Swaps.
    swap = honest["swap USDC->USDT"]
    add(
        "swap with USDT's vault paying out USDC's",
        replace(client, "swap", swap, {"receiving_custody_token_account": vault(world, "USDT")}),
        "InvalidTokenAccount",
    )
    add(
        "swap paying out of other's USDC vault",
        replace(
            client,
            "swap",
            swap,
            {"dispensing_custody_token_account": vault(world, "USDC", pool="other")},
        ),
        "InvalidTokenAccount",
    )
    add(
        "swap with USDC's oracle pricing USDT",
        replace(client, "swap", swap, {"dispensing_custody_oracle": oracle(world, "USDC")}),
        "InvalidOracleAccount",
    )
    add(
        "swap into other's USDT custody",
        replace(
            client,
            "swap",
            swap,
            {
                "dispensing_custody": custody(world, "USDT", pool="other"),
                "receiving_account": await other.token_account(me.key, "USDT"),
            },
        ),
        "ConstraintSeeds",
    )
    add(
        "swap USDC for ETH² (a market without tokens)",
        trade.swap_ix(
            client,
            me.key,
            env.pool,
            env.mint("USDC"),
            env.mint("ETHSQ"),
            100 * USDC,
            funding_account=me.accounts["USDC"],
            receiving_account=me.accounts["ETHSQ"],
        ),
        "SyntheticCustody",
    )

    # Liquidity.
    deposit = honest["add_liquidity USDC"]
    withdraw = honest["remove_liquidity USDC"]
    other_lp = await other.lp_account(me.key)
    other_usdc = await other.token_account(me.key, "USDC")
    for name, ix, user_account in (
        ("add_liquidity", deposit, "funding_account"),
        ("remove_liquidity", withdraw, "receiving_account"),
    ):
        add(
            f"{name} USDC into USDT's vault",
            replace(client, name, ix, {"custody_token_account": vault(world, "USDT")}),
            "InvalidTokenAccount",
        )
        add(
            f"{name} USDC with other's LP mint",
            replace(
                client,
                name,
                ix,
                {"lp_token_mint": pda.lp_token_mint(other_pool), "lp_token_account": other_lp},
            ),
            "ConstraintSeeds",
        )
        add(
            f"{name} USDC with an LP account of other's LP mint",
            replace(client, name, ix, {"lp_token_account": other_lp}),
            "InvalidTokenAccount",
        )
        add(
            f"{name} USDC with other's USDC custody",
            replace(
                client,
                name,
                ix,
                {"custody": custody(world, "USDC", pool="other"), user_account: other_usdc},
            ),
            "ConstraintSeeds",
        )
        add(
            f"{name} USDC with USDT's oracle",
            replace(client, name, ix, {"custody_oracle": oracle(world, "USDT")}),
            "InvalidOracleAccount",
        )
        add(
            f"{name} USDC in pool other (this pool's remaining accounts)",
            replace(client, name, ix, {"pool": other_pool}),
            "ConstraintSeeds",
        )
    add(
        "add_liquidity in ETH² (a market without tokens)",
        await lp.add_liquidity_ix(
            client,
            me.key,
            env.pool,
            env.mint("ETHSQ"),
            1,
            funding_account=me.accounts["ETHSQ"],
            lp_token_account=world.lp_accounts["attacker"],
        ),
        "SyntheticCustody",
    )
    add(
        "remove_liquidity in ETH² (a market without tokens)",
        await lp.remove_liquidity_ix(
            client,
            me.key,
            env.pool,
            env.mint("ETHSQ"),
            10 * USD,
            receiving_account=me.accounts["ETHSQ"],
            lp_token_account=world.lp_accounts["attacker"],
        ),
        "SyntheticCustody",
    )

    # Cranks and the oracle.
    for crank in ("accrue_borrow SOL", "update_funding SOL"):
        name = crank.split()[0]
        add(
            f"{crank} with other's SOL custody",
            replace(client, name, honest[crank], {"custody": custody(world, "SOL", pool="other")}),
            "ConstraintSeeds",
        )
        add(
            f"{crank} in pool other",
            replace(client, name, honest[crank], {"pool": other_pool}),
            "ConstraintSeeds",
        )
    set_sol = honest["set_custom_oracle_price SOL"]
    for label, overrides in (
        ("into the ETH oracle", {"oracle": oracle(world, "ETH")}),
        ("into other's SOL oracle", {"oracle": oracle(world, "SOL", pool="other")}),
        ("for other's SOL custody", {"custody": custody(world, "SOL", pool="other")}),
    ):
        out.append(
            case(
                f"set the SOL price {label}",
                replace(client, "set_custom_oracle_price", set_sol, overrides),
                [env.admin],
                error="ConstraintSeeds",
            )
        )
    return out


async def cosplay_cases(world: World) -> list[Case]:
    env, client, me = world.env, world.client, world.attacker
    honest = await _honest(world)
    long_sol = world.markets["long_sol"]
    mine = position_of(world, long_sol, me)
    main_pool = pda.pool(env.pool)
    lp_mint = pda.lp_token_mint(main_pool)
    sol_custody, sol_oracle = custody(world, "SOL"), oracle(world, "SOL")
    close = close_ix(world, me, long_sol, 5_000)
    deposit = honest["add_liquidity SOL"]
    swap = honest["swap SOL->USDC"]
    out: list[Case] = []

    def add(
        label: str, name: str, ix: Instruction, overrides: dict[str, Pubkey], error: str
    ) -> None:
        out.append(case(label, replace(client, name, ix, overrides), [me.wallet], error=error))

    mismatch = "AccountDiscriminatorMismatch"
    for label, key in (
        ("a Position", mine),
        ("the Pool", main_pool),
        ("a CustomOracle", sol_oracle),
        ("the Multisig", pda.multisig()),
        ("the Perpool", pda.perpool()),
    ):
        add(
            f"close with {label} as the custody",
            "close_position",
            close,
            {"custody": key},
            mismatch,
        )
    add(
        "close with a Custody as the pool", "close_position", close, {"pool": sol_custody}, mismatch
    )
    add(
        "close with the Perpool as the pool",
        "close_position",
        close,
        {"pool": pda.perpool()},
        mismatch,
    )
    add(
        "close with a Custody as the position",
        "close_position",
        close,
        {"position": sol_custody},
        mismatch,
    )
    add(
        "close with the Pool as the position",
        "close_position",
        close,
        {"position": main_pool},
        mismatch,
    )
    add(
        "close with the Multisig as the perpool",
        "close_position",
        close,
        {"perpool": pda.multisig()},
        mismatch,
    )
    add(
        "close with a Position as the collateral custody",
        "close_position",
        close,
        {"collateral_custody": mine},
        mismatch,
    )
    add(
        "close with the SOL Custody as its oracle",
        "close_position",
        close,
        {"custody_oracle": sol_custody},
        "InvalidOracleAccount",
    )
    add(
        "close with a Position as the oracle",
        "close_position",
        close,
        {"collateral_custody_oracle": mine},
        "InvalidOracleAccount",
    )
    not_token = "InvalidAccountData"
    add(
        "close paying into the SOL Mint",
        "close_position",
        close,
        {"receiving_account": env.mint("SOL")},
        not_token,
    )
    add(
        "close with the SOL Mint as the vault",
        "close_position",
        close,
        {"collateral_custody_token_account": env.mint("SOL")},
        not_token,
    )
    add(
        "close paying into the attacker's wallet",
        "close_position",
        close,
        {"receiving_account": me.key},
        "AccountOwnedByWrongProgram",
    )
    add(
        "close with a token account as the custody",
        "close_position",
        close,
        {"custody": me.accounts["SOL"]},
        "AccountOwnedByWrongProgram",
    )
    add(
        "close with a wallet as the custody",
        "close_position",
        close,
        {"custody": me.key},
        "AccountOwnedByWrongProgram",
    )
    add(
        "close with the program as the pool",
        "close_position",
        close,
        {"pool": PROGRAM_ID},
        "AccountOwnedByWrongProgram",
    )
    add(
        "close with the Perpool as the transfer authority",
        "close_position",
        close,
        {"transfer_authority": pda.perpool()},
        "ConstraintSeeds",
    )
    add(
        "deposit from the LP Mint",
        "add_liquidity",
        deposit,
        {"funding_account": lp_mint},
        not_token,
    )
    add(
        "deposit with the attacker's LP account as the LP mint",
        "add_liquidity",
        deposit,
        {"lp_token_mint": world.lp_accounts["attacker"]},
        not_token,
    )
    add(
        "deposit with the SOL vault as the LP mint",
        "add_liquidity",
        deposit,
        {"lp_token_mint": vault(world, "SOL")},
        not_token,
    )
    add(
        "deposit minting into the LP Mint itself",
        "add_liquidity",
        deposit,
        {"lp_token_account": lp_mint},
        not_token,
    )
    add(
        "deposit with the Pool as the custody",
        "add_liquidity",
        deposit,
        {"custody": main_pool},
        mismatch,
    )
    add(
        "swap with a Position as the dispensing custody",
        "swap",
        swap,
        {"dispensing_custody": mine},
        mismatch,
    )
    add(
        "swap paying into the USDC Mint",
        "swap",
        swap,
        {"receiving_account": env.mint("USDC")},
        not_token,
    )
    # The custody list of an AUM instruction: the Pool where the SOL custody belongs.
    metas = remaining(client, "add_liquidity", deposit)
    metas[0] = readonly([main_pool])[0]
    out.append(
        case(
            "deposit with the Pool among the remaining custodies",
            with_remaining(client, "add_liquidity", deposit, metas),
            [me.wallet],
            error="InvalidRemainingAccounts",
        )
    )
    set_permissions = client.set_permissions_ix(
        {
            name: True
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
        env.admin.pubkey(),
    )
    out.append(
        case(
            "set_permissions with the Perpool as the multisig",
            replace(client, "set_permissions", set_permissions, {"multisig": pda.perpool()}),
            [env.admin],
            error=mismatch,
        )
    )
    # Views: a Custody where the Position belongs.
    view = client.ix(
        "get_pnl",
        accounts={
            "perpool": pda.perpool(),
            "pool": main_pool,
            "position": sol_custody,
            "custody": sol_custody,
            "custody_oracle": sol_oracle,
            "collateral_custody": sol_custody,
            "collateral_custody_oracle": sol_oracle,
        },
    )
    out.append(case("get_pnl of a Custody", view, error=mismatch))
    return out


async def test_look_alike_accounts(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await substitution_cases(world)) >= 60


@pytest.mark.attack_class(4)
async def test_accounts_of_the_wrong_type(world: World, attack: Attack) -> None:
    assert await run_cases(attack, await cosplay_cases(world)) >= 30
