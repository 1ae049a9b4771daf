"""Class 15, overflow: u64::MAX and near-max amounts, sizes, prices and limits, close_bps past
10_000, leverage and exponent extremes, in every instruction, end in a named error (the
program's validation error or ``MathOverflow``) and change nothing; and the build keeps
overflow checks on with no silent narrowing casts in the program.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from adversarial_markets import (
    BPS,
    I64_MAX,
    SPECS,
    U64_MAX,
    Case,
    Desk,
    build_desk,
    collateral_of,
    crank_cases,
    liquidation_cases,
    lp_cases,
    open_cases,
    position_cases,
    swap_cases,
    view_cases,
)
from adversary import CONFIGS, ETH, USD, USDC, Attack, World
from solders.instruction import Instruction

from perpool import lp, trade
from perpool.localnet import find_repo_root

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(15)]

U32_MAX = 2**32 - 1
PROGRAM_SRC = find_repo_root() / "localnet" / "programs" / "perpool" / "src"


INSUFFICIENT_FUNDS = "token: insufficient funds"
"""Expected refusal of cases the program lets through to the token transfer: the attacker does
not hold u64::MAX tokens (and the open would still fail on utilization after it)."""


@dataclass(frozen=True)
class Extreme:
    label: str
    ix: Instruction
    error: str


# ---- amounts, sizes and limits at the edge of u64, in the world -----------------------------


def trade_extremes(world: World) -> list[tuple[Extreme, tuple]]:
    env, client, me = world.env, world.client, world.attacker
    out: list[tuple[Extreme, tuple]] = []

    def add(label: str, ix: Instruction, error: str) -> None:
        out.append((Extreme(label, ix, error), (me.wallet,)))

    fresh = {k: m for k, m in world.markets.items() if k != "long_sol"}
    for key, market in fresh.items():
        funding = me.accounts[collateral_of(env, market)]
        for label, collateral, size, error in (
            ("collateral u64::MAX", U64_MAX, 1_000 * USD, OPEN_COLLATERAL_MAX[key]),
            (
                "size u64::MAX",
                100 * USDC if key != "long_eth" else ETH,
                U64_MAX,
                "InsufficientCollateral",
            ),
            ("collateral and size u64::MAX", U64_MAX, U64_MAX, OPEN_BOTH_MAX[key]),
            ("collateral 1 unit", 1, 1_000 * USD, "InsufficientCollateral"),
        ):
            ix = trade.open_position_ix(
                client,
                me.key,
                market,
                collateral_amount=collateral,
                size_usd=size,
                funding_account=funding,
            )
            add(f"open {key}: {label}", ix, error)
        # Half the collateral goes to the 10 bps fee: 1000x on what is left.
        small, size = (ETH // 1_000, 1_500 * USD) if key == "long_eth" else (10 * USDC, 5_000 * USD)
        ix = trade.open_position_ix(
            client,
            me.key,
            market,
            collateral_amount=small,
            size_usd=size,
            funding_account=funding,
        )
        add(f"open {key}: leverage 1000x", ix, "LeverageTooHigh")
        price_limit = 0 if market.side == "long" else U64_MAX
        amount = ETH // 10 if key == "long_eth" else 100 * USDC
        ix = trade.open_position_ix(
            client,
            me.key,
            market,
            collateral_amount=amount,
            size_usd=1_000 * USD,
            funding_account=funding,
            price_limit=price_limit,
        )
        add(f"open {key}: price limit {price_limit}", ix, "PriceLimitExceeded")
    mine = world.markets["long_sol"]
    sol = me.accounts["SOL"]
    for close_bps in (0, BPS + 1, 2**63, U64_MAX):
        ix = trade.close_position_ix(
            client, me.key, mine, receiving_account=sol, close_bps=close_bps
        )
        add(f"close long_sol: close_bps {close_bps}", ix, "InvalidCloseSize")
    ix = trade.close_position_ix(client, me.key, mine, receiving_account=sol, price_limit=U64_MAX)
    add("close long_sol: price limit u64::MAX", ix, "PriceLimitExceeded")
    for amount, error in ((U64_MAX, "LeverageTooLow"), (U64_MAX // 2, "LeverageTooLow")):
        ix = trade.add_collateral_ix(client, me.key, mine, amount, funding_account=sol)
        add(f"add_collateral long_sol: {amount}", ix, error)
    for amount in (U64_MAX, 2**63):
        ix = trade.remove_collateral_ix(client, me.key, mine, amount, receiving_account=sol)
        add(f"remove_collateral long_sol: {amount} USD units", ix, "InsufficientCollateral")
    for src, dst, amount, error in (
        ("USDC", "USDT", U64_MAX, "InsufficientLiquidity"),
        ("SOL", "USDC", U64_MAX, "InsufficientLiquidity"),
        ("ETH", "SOL", U64_MAX, "MathOverflow"),
        ("USDT", "ETH", U64_MAX, "InsufficientLiquidity"),
    ):
        ix = trade.swap_ix(
            client,
            me.key,
            env.pool,
            env.mint(src),
            env.mint(dst),
            amount,
            funding_account=me.accounts[src],
            receiving_account=me.accounts[dst],
        )
        add(f"swap {src}->{dst}: amount_in u64::MAX", ix, error)
    ix = trade.swap_ix(
        client,
        me.key,
        env.pool,
        env.mint("USDC"),
        env.mint("SOL"),
        100 * USDC,
        funding_account=me.accounts["USDC"],
        receiving_account=me.accounts["SOL"],
        min_amount_out=U64_MAX,
    )
    add("swap USDC->SOL: min_amount_out u64::MAX", ix, "SlippageExceeded")
    return out


OPEN_COLLATERAL_MAX = {
    "short_sol": "LeverageTooLow",
    "long_eth": "MathOverflow",
    "short_eth": "LeverageTooLow",
    "long_ethsq": "LeverageTooLow",
}
OPEN_BOTH_MAX = {
    "short_sol": INSUFFICIENT_FUNDS,
    "long_eth": "MathOverflow",
    "short_eth": INSUFFICIENT_FUNDS,
    "long_ethsq": INSUFFICIENT_FUNDS,
}


async def lp_extremes(world: World) -> list[tuple[Extreme, tuple]]:
    env, client, me = world.env, world.client, world.attacker
    lp_account = world.lp_accounts["attacker"]
    out: list[tuple[Extreme, tuple]] = []
    for symbol, error in (
        ("USDC", "MathOverflow"),
        ("ETH", "MathOverflow"),
        ("SOL", INSUFFICIENT_FUNDS),
    ):
        ix = await lp.add_liquidity_ix(
            client,
            me.key,
            env.pool,
            env.mint(symbol),
            U64_MAX,
            funding_account=me.accounts[symbol],
            lp_token_account=lp_account,
        )
        out.append((Extreme(f"add_liquidity {symbol}: u64::MAX", ix, error), (me.wallet,)))
    ix = await lp.add_liquidity_ix(
        client,
        me.key,
        env.pool,
        env.mint("USDT"),
        100 * USDC,
        funding_account=me.accounts["USDT"],
        lp_token_account=lp_account,
        min_lp_amount_out=U64_MAX,
    )
    out.append(
        (Extreme("add_liquidity USDT: min LP out u64::MAX", ix, "SlippageExceeded"), (me.wallet,))
    )
    for symbol, amount, error in (
        ("USDC", U64_MAX, "InvalidCalculationInput"),
        ("SOL", U64_MAX, "InvalidCalculationInput"),
    ):
        ix = await lp.remove_liquidity_ix(
            client,
            me.key,
            env.pool,
            env.mint(symbol),
            amount,
            receiving_account=me.accounts[symbol],
            lp_token_account=lp_account,
        )
        out.append((Extreme(f"remove_liquidity {symbol}: {amount} LP", ix, error), (me.wallet,)))
    ix = await lp.remove_liquidity_ix(
        client,
        me.key,
        env.pool,
        env.mint("ETH"),
        10 * USD,
        receiving_account=me.accounts["ETH"],
        lp_token_account=lp_account,
        min_amount_out=U64_MAX,
    )
    out.append(
        (Extreme("remove_liquidity ETH: min out u64::MAX", ix, "SlippageExceeded"), (me.wallet,))
    )
    return out


async def test_u64_extremes_in_trades_lp_and_swaps(world: World, attack: Attack) -> None:
    for extreme, signers in [*trade_extremes(world), *await lp_extremes(world)]:
        if extreme.error == INSUFFICIENT_FUNDS:
            await attack.failed(extreme.label, [extreme.ix], signers, contains="insufficient funds")
        else:
            await attack.rejected(extreme.label, [extreme.ix], signers, error=extreme.error)


async def test_admin_limits_at_the_edge(world: World, attack: Attack) -> None:
    """The admin's own amounts and limits: withdrawing u64::MAX of protocol fees, configs with
    leverage, fees, rates, ages, utilization and caps at u64/u32 extremes or one past their
    bound, are each refused by name."""
    env, client = world.env, world.client
    admin = env.admin
    receiving = await env.token_account(admin.pubkey(), "USDC")
    ix = client.withdraw_protocol_fees_ix(
        env.pool, env.mint("USDC"), U64_MAX, receiving, admin.pubkey()
    )
    await attack.rejected(
        "withdraw_protocol_fees u64::MAX",
        [ix],
        [admin],
        error="InsufficientProtocolFees",
        watch=[receiving],
    )
    base = dict(CONFIGS["SOL"])
    for label, overrides, error in (
        ("max_leverage u64::MAX", {"max_leverage": U64_MAX}, "InvalidPricingConfig"),
        ("max_leverage past 1000x", {"max_leverage": 1_000 * BPS + 1}, "InvalidPricingConfig"),
        (
            "max_initial_leverage u64::MAX",
            {"max_initial_leverage": U64_MAX},
            "InvalidPricingConfig",
        ),
        (
            "min_initial_leverage below 1x",
            {"min_initial_leverage": BPS - 1},
            "InvalidPricingConfig",
        ),
        ("max_utilization_bps past 100%", {"max_utilization_bps": BPS + 1}, "InvalidPricingConfig"),
        ("max_utilization_bps u64::MAX", {"max_utilization_bps": U64_MAX}, "InvalidPricingConfig"),
        ("open fee u64::MAX", {"open_position_bps": U64_MAX}, "InvalidFeeConfig"),
        ("min fee u64::MAX", {"min_fee_usd": U64_MAX}, "InvalidFeeConfig"),
        ("protocol share past 100%", {"protocol_share_bps": BPS + 1}, "InvalidFeeConfig"),
        ("hourly rate u64::MAX", {"hourly_rate": U64_MAX}, "InvalidBorrowRateConfig"),
        (
            "rate curve summing past u64",
            {"hourly_rate": U64_MAX, "slope2": U64_MAX},
            "InvalidBorrowRateConfig",
        ),
        ("max price age u32::MAX", {"max_price_age_sec": U32_MAX}, "InvalidOracleConfig"),
        ("max price error u64::MAX", {"max_price_error_bps": U64_MAX}, "InvalidOracleConfig"),
        (
            "target ratio past 100%",
            {"target_bps": U64_MAX, "max_bps": U64_MAX},
            "InvalidTokenRatios",
        ),
        (
            "funding rate cap u64::MAX",
            {"funding_c": 1, "max_funding_rate": U64_MAX},
            "InvalidFundingConfig",
        ),
        ("slippage curve u64::MAX", {"long_a_bps": U64_MAX}, "InvalidSlippageConfig"),
        (
            "insurance fraction u64::MAX",
            {"insurance_fund_fraction_bps": U64_MAX},
            "InvalidLiquidationConfig",
        ),
    ):
        config = env.config("SOL", **(base | overrides))
        ix = client.set_custody_config_ix(env.pool, env.mint("SOL"), config, admin.pubkey())
        await attack.rejected(f"SOL config with {label}", [ix], [admin], error=error)


# ---- prices and exponents at the edge, on a desk ----------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desk(world: World) -> AsyncIterator[Desk]:
    yield await build_desk(world, "overflow")


async def sol_readers(desk: Desk) -> list[Case]:
    env = desk.env
    sol_markets = {k: m for k, m in desk.markets.items() if k.endswith("_sol")}
    cases = [
        *open_cases(env, sol_markets, desk.newcomer),
        *position_cases(env, sol_markets, desk.trader),
        *await lp_cases(env, desk.trader, desk.lp_accounts["trader"], ("SOL", "USDC")),
        *swap_cases(env, desk.trader, (("SOL", "USDC"), ("USDC", "SOL"))),
        *await crank_cases(env),
        *liquidation_cases(env, sol_markets, desk.newcomer, desk.trader),
    ]
    views = await view_cases(env, sol_markets, desk.trader, ("SOL",))
    return [*cases, *views]


PRICE_EXTREMES = (
    ("SOL", I64_MAX, -2, "SOL at i64::MAX x 10^-2 USD"),
    ("SOL", 1, 18, "SOL at 10^18 USD"),
    ("SOL", I64_MAX, 9, "SOL at i64::MAX x 10^9 USD"),
)


SOL_EXCEPTIONS = {
    # A $10 withdrawal is less than one lamport at these prices.
    "remove_collateral long_sol": "ZeroAmount",
    # $100 buys less than one lamport.
    "swap USDC->SOL": "ZeroAmount",
}


async def test_prices_and_exponents_at_the_edge(desk: Desk, attack: Attack) -> None:
    """SOL posted at the largest price the oracle accepts with a small, the largest and a
    positive exponent: every instruction and view reading SOL refuses by name (a value that
    does not fit, or an amount that rounds to nothing), and the ETH² payoff of a huge oracle
    price overflows the same way."""
    env = desk.env
    readers = await sol_readers(desk)
    readers = [
        c
        for c in readers
        if c.label not in ("add_collateral short_sol", "get_swap_amount_and_fees ETH->USDT")
    ]
    for index, (symbol, price, expo, label) in enumerate(PRICE_EXTREMES):
        cases = readers
        if index:
            # The other extremes: one case per instruction, no views.
            names: set[str] = set()
            cases = []
            for c in readers:
                if c.name not in names and not c.name.startswith("get_"):
                    names.add(c.name)
                    cases.append(c)
        await env.set_price(symbol, price, expo=expo)
        for case in cases:
            await attack.rejected(
                f"{label}: {case.label}",
                [case.ix],
                case.signers,
                error=SOL_EXCEPTIONS.get(case.label, "MathOverflow"),
                watch=desk.watch(),
                env=env,
            )
        await env.set_price(symbol, SPECS[symbol].price)
    ethsq = {"long_ethsq": desk.markets["long_ethsq"]}
    cases = [
        *open_cases(env, ethsq, desk.newcomer),
        *[c for c in position_cases(env, ethsq, desk.trader) if "collateral" not in c.label],
        *liquidation_cases(env, ethsq, desk.newcomer, desk.trader),
        *[c for c in await lp_cases(env, desk.trader, desk.lp_accounts["trader"], ("USDC",))],
        *[
            c
            for c in await view_cases(env, ethsq, desk.trader, ("ETHSQ",))
            if "ETHSQ" in c.label or "long_ethsq" in c.label
        ],
    ]
    await env.set_price("ETHSQ", I64_MAX)
    for case in cases:
        await attack.rejected(
            f"ETH2 oracle at i64::MAX x 10^-8 USD: {case.label}",
            [case.ix],
            case.signers,
            error="MathOverflow",
            watch=desk.watch(),
            env=env,
        )
    await env.set_price("ETHSQ", SPECS["ETHSQ"].price)


# ---- the build and the source -----------------------------------------------------------------

ALLOWED_CASTS: dict[str, str] = {
    "math/liquidation_steps.rs": "usize step index and count (at most MAX_STEPS = 4) widened "
    "to u64, lossless on every target",
    "math/borrow.rs": "the INDEX_ONE constant: u64 constants widened to u128 in a const "
    "expression (From is not const)",
}
"""Every remaining ``as`` cast between integer types in the program, and why it cannot
truncate."""

CAST = re.compile(r"\bas\s+(?:u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize)\b")


TEST_ONLY = {"math/test_values.rs"}
"""Compiled only under ``#[cfg(test)]`` (value generators for the unit tests)."""


def program_sources() -> list[Path]:
    return sorted(
        p for p in PROGRAM_SRC.rglob("*.rs") if str(p.relative_to(PROGRAM_SRC)) not in TEST_ONLY
    )


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines of program code: comments stripped (``//`` to the end of the line), and the file's
    ``#[cfg(test)] mod tests`` at its end left out."""
    out = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.strip() == "#[cfg(test)]" and lines[number : number + 1] == ["mod tests {"]:
            break
        code = line.split("//", 1)[0]
        if code.strip():
            out.append((number, code))
    return out


async def test_the_build_and_source_keep_overflow_checks(attack: Attack) -> None:
    manifest = tomllib.loads((find_repo_root() / "localnet" / "Cargo.toml").read_text())
    release = manifest["profile"]["release"]
    attack.static(
        "release profile has overflow-checks = true",
        release.get("overflow-checks") is True,
        f"[profile.release] = {release}",
    )
    casts = {}
    for path in program_sources():
        rel = str(path.relative_to(PROGRAM_SRC))
        hits = [(n, code.strip()) for n, code in code_lines(path) if CAST.search(code)]
        if hits:
            casts[rel] = hits
    unexplained = {k: v for k, v in casts.items() if k not in ALLOWED_CASTS}
    attack.static(
        "no integer `as` cast in the program outside the explained allow-list",
        not unexplained,
        f"unexplained casts: {unexplained}",
    )
    attack.static(
        "every allow-listed cast still exists (the list stays current)",
        set(ALLOWED_CASTS) == set(casts),
        f"allow-listed but gone: {set(ALLOWED_CASTS) - set(casts)}",
    )
    wrapping = re.compile(r"\b(?:wrapping|overflowing|unchecked)_(?:add|sub|mul|div|neg|pow|shl)\b")
    found = [
        f"{p.relative_to(PROGRAM_SRC)}:{n}"
        for p in program_sources()
        for n, code in code_lines(p)
        if wrapping.search(code)
    ]
    attack.static(
        "no wrapping, overflowing or unchecked arithmetic in the program",
        not found,
        f"found: {found}",
    )
