"""Classes 9-12, the oracle: stale prices, future-dated or non-increasing publish times, wide
confidence intervals, wrong feeds and exponents.

Class 9 runs on a desk of its own whose custodies accept prices for 30 s: once the clock is past
that, every instruction that reads a price (trades, LP actions, swaps, liquidations, the AUM
crank and every view) is refused with ``StaleOraclePrice``, for every token and every leg, while a
fresh price posted in the same transaction is enough to liquidate. Classes 10-12 use the world
(the refused posts change nothing, the confidence cases restore every price they post) and a
second desk for the confidence limits of other configurations and the exponents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
from adversarial_markets import (
    BPS,
    I64_MAX,
    I64_MIN,
    MARKET_KEYS,
    SPECS,
    U64_MAX,
    Case,
    Desk,
    build_desk,
    crank_cases,
    desk_configs,
    fixed_accounts,
    fresh_price_ixs,
    fund_trader,
    liquidation_cases,
    lp_cases,
    open_cases,
    oracle_key,
    oracle_state,
    position_cases,
    price_ix,
    reads,
    simulate_view,
    swap_cases,
    view_cases,
    with_remaining_accounts,
)
from adversary import (
    ETH,
    SOL,
    USD,
    USDC,
    USDT,
    Attack,
    World,
    honest_instructions,
)
from pool_env import PoolEnv
from rejections import simulate_error
from solders.instruction import AccountMeta, Instruction
from trade_support import Trader, account_exists, early_in_second, open_position

from perpool import trade

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(9)]

STALE_AGE = 30
"""The stale desk's ``max_price_age_sec``."""

GAMBLE: dict[str, tuple[int, int]] = {
    "long_sol": (SOL // 10, 900 * USD),
    "short_sol": (10 * USDC, 900 * USD),
    "long_eth": (333_334, 900 * USD),
    "short_eth": (10 * USDT, 900 * USD),
    "long_ethsq": (10 * USDC, 900 * USD),
}
"""90x positions ($10 of collateral, $900 of size): liquidatable after a 0.8% adverse move."""

CRASH: dict[str, dict[str, int]] = {
    "long_sol": {"SOL": 99_20},
    "short_sol": {"SOL": 100_80, "USDC": USDC},
    "long_eth": {"ETH": 2_976 * ETH},
    "short_eth": {"ETH": 3_024 * ETH, "USDT": USDT},
    "long_ethsq": {"ETHSQ": 996 * ETH, "USDC": USDC},
}
"""Oracle prices 0.8% against each gamble (ETH² moves twice its oracle); stables at $1."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stale(world: World) -> AsyncIterator[tuple[Desk, Trader]]:
    """The stale desk and a gambler with a 90x position in every market."""
    desk = await build_desk(world, "stale", desk_configs({"max_price_age_sec": STALE_AGE}))
    gambler = await fund_trader(desk.env)
    for key, (collateral, size) in GAMBLE.items():
        await open_position(
            desk.env, gambler, desk.markets[key], collateral=collateral, size_usd=size
        )
    yield desk, gambler


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def oracle(world: World) -> Desk:
    """A desk for the confidence and exponent cases; its SOL custody takes the narrowest
    confidence limit (1 bp), its USDC custody the widest (100%)."""
    configs = desk_configs(SOL={"max_price_error_bps": 1}, USDC={"max_price_error_bps": BPS})
    return await build_desk(world, "oracle", configs)


def symbols_of(env: PoolEnv, case: Case, fixed_only: bool = False) -> set[str]:
    """The tokens whose oracle the instruction reads (in fixed accounts only, if asked)."""
    accounts = case.ix.accounts
    if fixed_only:
        accounts = accounts[: len(fixed_accounts(env.client, case.name))]
    keys = {m.pubkey for m in accounts}
    return {s for s in env.specs if oracle_key(env, s) in keys}


async def desk_cases(desk: Desk, gambler: Trader) -> list[Case]:
    env = desk.env
    return [
        *open_cases(env, desk.markets, desk.newcomer),
        *position_cases(env, desk.markets, desk.trader),
        *await lp_cases(env, desk.trader, desk.lp_accounts["trader"]),
        *swap_cases(env, desk.trader),
        *await crank_cases(env),
        *liquidation_cases(env, desk.markets, desk.newcomer, gambler),
        *await view_cases(env, desk.markets, desk.trader),
    ]


async def make_stale(env: PoolEnv, age: int) -> None:
    """Moves the clock past ``age`` seconds after the newest price of the pool."""
    newest = max(env.last_publish.values())
    now = await env.now()
    if now <= newest + age:
        await env.advance(newest + age + 1 - now)


# ---- class 9: stale prices -------------------------------------------------------------------


async def test_desk_instructions_are_valid_while_prices_are_fresh(
    stale: tuple[Desk, Trader],
) -> None:
    """The baseline: with fresh prices every case would succeed (the gambler's healthy 90x
    positions are merely not liquidatable), so a refusal below comes from the stale price."""
    desk, gambler = stale
    await desk.env.refresh_prices()
    for case in await desk_cases(desk, gambler):
        error = await simulate_error(desk.env.client, [case.ix], case.signers)
        expected = "NotLiquidatable" if case.name == "liquidate" else None
        assert error == expected, f"{case.label}: {error}"


async def test_every_price_reader_refuses_a_stale_price(
    stale: tuple[Desk, Trader], attack: Attack
) -> None:
    desk, gambler = stale
    env = desk.env
    await make_stale(env, STALE_AGE)
    for case in await desk_cases(desk, gambler):
        await attack.rejected(
            f"stale desk: {case.label}",
            [case.ix],
            case.signers,
            error="StaleOraclePrice",
            watch=[*desk.watch(), *gambler.accounts.values()],
            env=env,
        )


async def test_one_stale_oracle_is_enough(stale: tuple[Desk, Trader], attack: Attack) -> None:
    """Fresh prices for every oracle but one, in the same transaction: still refused, for each
    token missing from the AUM, each swap leg and each side of a two-custody market."""
    desk, gambler = stale
    env = desk.env
    await make_stale(env, STALE_AGE)
    watch = [*desk.watch(), *gambler.accounts.values()]
    cases = {c.label: c for c in await desk_cases(desk, gambler)}
    targets: list[tuple[str, Case, str]] = []
    for symbol in env.specs:
        targets.append((f"AUM without a fresh {symbol}", cases["add_liquidity USDC"], symbol))
    for src, dst in (("SOL", "USDC"), ("ETH", "USDT")):
        swap = cases[f"swap {src}->{dst}"]
        targets += [(f"swap {src}->{dst}, in leg stale", swap, src)]
        targets += [(f"swap {src}->{dst}, out leg stale", swap, dst)]
    for key in ("short_sol", "short_eth", "long_ethsq"):
        close = cases[f"close_position {key}"]
        for symbol in sorted(symbols_of(env, close, fixed_only=True)):
            targets.append((f"close {key} with {symbol} stale", close, symbol))
        open_ = cases[f"open_position {key}"]
        for symbol in sorted(symbols_of(env, open_, fixed_only=True)):
            targets.append((f"open {key} with {symbol} stale", open_, symbol))
    for label, case, missing in targets:
        fresh = [s for s in symbols_of(env, case) if s != missing]
        await attack.rejected(
            f"stale desk: {label}",
            [*await fresh_price_ixs(env, fresh), case.ix],
            [env.admin, *case.signers],
            error="StaleOraclePrice",
            watch=watch,
            env=env,
        )


async def test_liquidation_with_a_fresh_price_in_the_same_transaction(
    stale: tuple[Desk, Trader], attack: Attack
) -> None:
    """A stale market is still liquidatable: the keeper posts a fresh price in the liquidation's
    own transaction. At the old price the position is healthy (the fresh price is the one read);
    0.8% against it, the liquidation lands and the position is gone."""
    desk, gambler = stale
    env, keeper = desk.env, desk.newcomer
    watch = [*desk.watch(), *gambler.accounts.values()]
    cases = {c.label: c for c in liquidation_cases(env, desk.markets, keeper, gambler)}
    for key in MARKET_KEYS:
        await make_stale(env, STALE_AGE)
        case = cases[f"liquidate {key}"]
        symbols = sorted(symbols_of(env, case))
        await attack.rejected(
            f"stale desk: liquidate {key} with a fresh but unchanged price",
            [*await fresh_price_ixs(env, symbols), case.ix],
            [env.admin, *case.signers],
            error="NotLiquidatable",
            watch=watch,
            env=env,
        )
        position = trade.position_key(env.client, desk.markets[key], gambler.key)
        async with attack.holds(f"stale desk: liquidate {key} with a fresh crash price"):
            now = await env.now()
            posts = [price_ix(env, s, now, price=CRASH[key].get(s)) for s in symbols]
            await env.client.send([*posts, case.ix], [keeper.wallet])
            for symbol in symbols:
                env.last_publish[symbol] = now
            assert not await account_exists(env, position), "the position survived"
    # Back to the initial prices for whatever runs next on this desk.
    await env.refresh_prices()


# ---- class 10: future-dated and non-increasing publish times ---------------------------------

FUTURE_OFFSETS = (3, 600, 86_400, 10 * 365 * 86_400)


@pytest.mark.attack_class(10)
async def test_future_publish_times_are_refused(world: World, attack: Attack) -> None:
    """Every oracle of both pools, at several distances in the future, with the far end of i64;
    and with a confidence and an EMA of their own (the publish time is checked whatever else the
    post says). A future time would freeze the feed: no later honest post could follow it."""
    for pool in (world.env, world.other):
        for index, symbol in enumerate(pool.specs):
            spec = pool.specs[symbol]
            offsets = (*FUTURE_OFFSETS, None) if pool is world.env else (3, None)
            for offset in offsets:
                if offset == FUTURE_OFFSETS[0]:
                    # Early in a second, so that the clock cannot reach now + 3 s before the
                    # transaction has been simulated and landed.
                    await early_in_second()
                now = await pool.now()
                when = I64_MAX if offset is None else now + offset
                extra: dict[str, int] = {}
                if offset == FUTURE_OFFSETS[index % len(FUTURE_OFFSETS)]:
                    extra = {"conf": spec.price // 200, "ema": spec.price * 99 // 100}
                label = "i64::MAX" if offset is None else f"now + {offset} s"
                await attack.rejected(
                    f"{pool.pool} {symbol} price published at {label}"
                    + (" (own conf and EMA)" if extra else ""),
                    [price_ix(pool, symbol, when, **extra)],
                    [pool.admin],
                    error="InvalidPublishTime",
                    env=pool,
                )


@pytest.mark.attack_class(10)
async def test_publish_times_must_increase(world: World, attack: Attack) -> None:
    env = world.env
    for symbol in env.specs:
        last = (await oracle_state(env, symbol)).publish_time
        for label, when in (
            ("the last publish time again", last),
            ("one second before the last", last - 1),
            ("i64::MIN", I64_MIN),
        ):
            await attack.rejected(
                f"{symbol} price published at {label}",
                [price_ix(env, symbol, when)],
                [env.admin],
                error="InvalidPublishTime",
            )


@pytest.mark.attack_class(10)
async def test_a_valid_post_does_not_carry_a_future_one(world: World, attack: Attack) -> None:
    """A valid post followed by a future-dated one in the same transaction: the whole
    transaction fails, the valid post included; and a post stamped with the current time is
    accepted and then pins the feed's time (the same second cannot be posted twice)."""
    env = world.env
    for symbol in ("SOL", "ETH", "USDC"):
        await early_in_second()
        now = await env.now()
        # The first post alone would land: the refusal is the second one's.
        assert now > (await oracle_state(env, symbol)).publish_time
        await attack.rejected(
            f"{symbol}: a valid post, then one at now + 3600 s, in one transaction",
            [price_ix(env, symbol, now), price_ix(env, symbol, now + 3_600)],
            [env.admin],
            error="InvalidPublishTime",
        )
    async with attack.holds("a post stamped with the current clock is accepted"):
        now = await env.now()
        await env.client.send([price_ix(env, "SOL", now)], [env.admin])
        env.last_publish["SOL"] = now
        assert (await oracle_state(env, "SOL")).publish_time == now
    await attack.rejected(
        "SOL price published again in the same second",
        [price_ix(env, "SOL", now)],
        [env.admin],
        error="InvalidPublishTime",
    )


# ---- class 11: confidence --------------------------------------------------------------------


async def world_cases(world: World) -> list[Case]:
    """Every price reader of the world: the attacker's honest instructions, liquidations of the
    victim's positions and every view."""
    honest = [
        Case(h.label, h.ix, h.signers)
        for h in await honest_instructions(world)
        if h.name not in ("set_custom_oracle_price", "accrue_borrow", "update_funding")
    ]
    return [
        *honest,
        *liquidation_cases(world.env, world.markets, world.attacker, world.victim),
        *await view_cases(world.env, world.markets, world.victim),
    ]


POOL_WIDE = ("update_pool_aum", "get_assets_under_management", "get_lp_token_price")


def reading(env: PoolEnv, cases: Sequence[Case], symbol: str) -> list[Case]:
    """The cases that read ``symbol``'s oracle: in a fixed account, or through the AUM where
    the instruction is about ``symbol`` (or about the whole pool); at most two per instruction
    (markets, legs) and one per view."""
    out: list[Case] = []
    for case in cases:
        taken = sum(c.name == case.name for c in out)
        if taken >= (1 if case.name.startswith("get_") else 2):
            continue
        if symbol in symbols_of(env, case, fixed_only=True) or (
            reads(case, oracle_key(env, symbol))
            and (symbol in case.label.split() or case.label in POOL_WIDE)
        ):
            out.append(case)
    return out


async def max_error_bps(env: PoolEnv, symbol: str) -> int:
    value: int = (await env.custody(symbol)).oracle.max_price_error_bps
    return value


@pytest.mark.attack_class(11)
async def test_confidence_at_the_limit_accepted_one_unit_over_refused(
    world: World, attack: Attack
) -> None:
    """Per token, per instruction reading it: ``conf = price * max_error_bps / 10_000`` exactly
    passes the oracle check (the instruction would succeed; a healthy position is merely not
    liquidatable), one unit more is refused with ``OracleConfidenceTooWide``."""
    env = world.env
    cases = await world_cases(world)
    for symbol in env.specs:
        spec = SPECS[symbol]
        limit = spec.price * await max_error_bps(env, symbol) // BPS
        assert limit * BPS == spec.price * await max_error_bps(env, symbol)
        mine = reading(env, cases, symbol)
        assert mine, symbol
        try:
            await env.set_price(symbol, spec.price, conf=limit)
            for case in mine:
                async with attack.holds(f"{symbol} conf at the limit: {case.label}"):
                    error = await simulate_error(env.client, [case.ix], case.signers)
                    expected = "NotLiquidatable" if case.name == "liquidate" else None
                    assert error == expected, f"{case.label}: {error}"
            await env.set_price(symbol, spec.price, conf=limit + 1)
            for case in mine:
                await attack.rejected(
                    f"{symbol} conf one unit over the limit: {case.label}",
                    [case.ix],
                    case.signers,
                    error="OracleConfidenceTooWide",
                )
        finally:
            await env.set_price(symbol, spec.price)


@pytest.mark.attack_class(11)
async def test_confidence_limits_of_other_configurations(oracle: Desk, attack: Attack) -> None:
    """The same boundary at the narrowest (1 bp) and widest (100%) limits a custody may set,
    on a pool of its own: swaps and the oracle view refuse one unit over."""
    desk = oracle
    pool = desk.env
    client = pool.client
    trader = desk.newcomer
    for symbol, bps in (("SOL", 1), ("USDC", BPS)):
        spec = SPECS[symbol]
        limit = spec.price * bps // BPS
        other = "USDC" if symbol == "SOL" else "SOL"
        cases = [
            *swap_cases(pool, trader, ((symbol, other), (other, symbol))),
            *[
                c
                for c in await view_cases(pool, {}, trader, (symbol,))
                if c.name == "get_oracle_price"
            ],
        ]
        await pool.set_price(symbol, spec.price, conf=limit)
        for case in cases:
            async with attack.holds(f"{symbol} limit {bps} bps, conf at the limit: {case.label}"):
                assert await simulate_error(client, [case.ix], case.signers) is None
        await pool.set_price(symbol, spec.price, conf=limit + 1)
        for case in cases:
            await attack.rejected(
                f"{symbol} limit {bps} bps, conf one unit over: {case.label}",
                [case.ix],
                case.signers,
                error="OracleConfidenceTooWide",
                watch=desk.watch(),
                env=pool,
            )
        await pool.set_price(symbol, spec.price)
    await attack.rejected(
        "custody config with a 0 bps confidence limit",
        [
            client.set_custody_config_ix(
                pool.pool,
                pool.mint("SOL"),
                pool.config("SOL", max_price_error_bps=0),
                pool.admin.pubkey(),
            )
        ],
        [pool.admin],
        error="InvalidOracleConfig",
        env=pool,
    )


# ---- class 12: wrong feed, exponents ---------------------------------------------------------

NEIGHBOUR = {"SOL": "ETH", "ETH": "SOL", "USDC": "USDT", "USDT": "USDC", "ETHSQ": "ETH"}
"""Another custody's oracle to pass instead (USDC ↔ USDT: the same $1 price, still wrong)."""


@pytest.mark.attack_class(12)
async def test_another_custodys_oracle_is_refused(world: World, attack: Attack) -> None:
    """Every oracle account of every price reader replaced by another custody's oracle of the
    same pool, and (once per instruction) by the same token's oracle of pool ``other``."""
    env, other = world.env, world.other
    client = env.client
    by_key = {oracle_key(env, s): s for s in env.specs}
    cases = await world_cases(world)
    seen: set[str] = set()
    views_done: dict[str, int] = {}
    for case in cases:
        is_view = case.name.startswith("get_")
        if is_view:
            # Two of each view (they share one account check), first oracle slot only.
            if views_done.get(case.name, 0) >= 2:
                continue
            views_done[case.name] = views_done.get(case.name, 0) + 1
        names = fixed_accounts(client, case.name)
        slots = [i for i, name in enumerate(names) if name.endswith("oracle")]
        for index in slots[:1] if is_view else slots:
            symbol = by_key[case.ix.accounts[index].pubkey]
            swaps = [(f"{NEIGHBOUR[symbol]}'s oracle", oracle_key(env, NEIGHBOUR[symbol]))]
            if case.name not in seen:
                seen.add(case.name)
                twin = symbol if symbol in other.specs else "ETH"
                swaps.append((f"pool other's {twin} oracle", oracle_key(other, twin)))
            for what, key in swaps:
                metas = list(case.ix.accounts)
                metas[index] = AccountMeta(key, metas[index].is_signer, metas[index].is_writable)
                ix = Instruction(case.ix.program_id, case.ix.data, metas)
                await attack.rejected(
                    f"{case.label}: {names[index]} = {what}",
                    [ix],
                    case.signers,
                    error="InvalidOracleAccount",
                )


@pytest.mark.attack_class(12)
async def test_wrong_feed_in_the_aum_accounts_is_refused(world: World, attack: Attack) -> None:
    env = world.env
    honest = {h.label: h for h in await honest_instructions(world)}
    remaining = await env.client.pool_remaining_accounts(env.pool)
    n = len(remaining) // 2
    for label in ("add_liquidity SOL", "remove_liquidity USDC", "update_pool_aum"):
        h = honest[label]
        for i, j in ((0, 1), (2, 3)):
            swapped = list(remaining)
            swapped[n + i], swapped[n + j] = swapped[n + j], swapped[n + i]
            await attack.rejected(
                f"{label}: oracles {i} and {j} of the AUM accounts swapped",
                [with_remaining_accounts(env.client, h.name, h.ix, swapped)],
                h.signers,
                error="InvalidRemainingAccounts",
            )
        other = await env.client.pool_remaining_accounts(world.other.pool)
        mixed = [*remaining[:n], *other[len(other) // 2 :], remaining[-1]]
        await attack.rejected(
            f"{label}: pool other's oracles in the AUM accounts",
            [with_remaining_accounts(env.client, h.name, h.ix, mixed)],
            h.signers,
            error="InvalidRemainingAccounts",
        )


EXTREME_EXPONENTS = (19, -19, 2**31 - 1, -(2**31), 40, -40)


@pytest.mark.attack_class(12)
async def test_exponents_out_of_range_and_unreadable_prices_are_refused(
    world: World, attack: Attack
) -> None:
    """Exponents beyond ±18 cannot be valued without overflow: refused at the post, for every
    token; so are zero prices and prices the reader could never accept (above i64::MAX)."""
    env = world.env
    symbols = list(env.specs)
    for index, expo in enumerate(EXTREME_EXPONENTS):
        for symbol in (symbols[index % len(symbols)], symbols[(index + 2) % len(symbols)]):
            now = await env.now()
            await attack.rejected(
                f"{symbol} price with exponent {expo}",
                [price_ix(env, symbol, now, price=1, expo=expo)],
                [env.admin],
                error="InvalidOraclePrice",
            )


EXPONENT_FORMS: dict[str, tuple[tuple[int, int], ...]] = {
    "SOL": ((100 * 10**9, -9), (10**18, -16), (100, 0), (10, 1), (1, 2)),
    "ETH": ((3_000_000, -3), (3 * 10**17, -14), (3_000, 0), (3, 3)),
    "USDC": ((10**18, -18), (1, 0), (10**9, -9)),
    "USDT": ((10**12, -12), (1, 0)),
    "ETHSQ": ((10**18, -15), (1_000, 0), (1, 3), (10**12, -9)),
}
"""The same USD price as each token's initial one (SOL $100, ETH $3000, stables $1, the ETH²
oracle $1000) written with other exponents, from -18 to +3."""


async def snapshot(env: PoolEnv, cases: Sequence[Case]) -> dict[str, Any]:
    return {case.label: await simulate_view(env.client, case) for case in cases}


def comparable(label: str, value: Any) -> Any:
    """A view result as a plain value; the oracle view's mantissa and exponent are dropped
    (they are what changed), its 9-decimal USD price is kept."""
    if label.startswith("get_oracle_price"):
        return value.price_usd_e9
    return value


@pytest.mark.attack_class(12)
async def test_any_exponent_values_the_same_price_the_same(oracle: Desk, attack: Attack) -> None:
    """A desk with a position in every market: each token's initial price posted again with
    other exponents (negative and positive) gives exactly the same views: oracle price in USD,
    entry and exit quotes, PnL, liquidation price and state, LP quotes, swap quotes, AUM and LP
    price."""
    desk = oracle
    env = desk.env
    views = await view_cases(env, desk.markets, desk.trader)
    for symbol, forms in EXPONENT_FORMS.items():
        spec = SPECS[symbol]
        mine = [c for c in views if reads(c, oracle_key(env, symbol))]
        await env.set_price(symbol, spec.price)
        base = {k: comparable(k, v) for k, v in (await snapshot(env, mine)).items()}
        for price, expo in forms:
            async with attack.holds(
                f"{symbol} at {price}e{expo} values like {spec.price}e{spec.expo}"
            ):
                await env.set_price(symbol, price, expo=expo)
                oracle_view = next(c for c in mine if c.label == f"get_oracle_price {symbol}")
                view = await simulate_view(env.client, oracle_view)
                if symbol != "ETHSQ":  # a payoff market's view is payoff(P) in 9 decimals
                    assert (view.price, view.exponent) == (price, expo)
                now = {k: comparable(k, v) for k, v in (await snapshot(env, mine)).items()}
                diff = [k for k in base if base[k] != now[k]]
                assert not diff, f"views differ: {[(k, base[k], now[k]) for k in diff]}"
        await env.set_price(symbol, spec.price)


@pytest.mark.attack_class(12)
async def test_the_largest_exponents_stay_exact_or_refuse_by_name(
    oracle: Desk, attack: Attack
) -> None:
    """At the ends of the accepted range: $1 as 10^18 * 10^-18 is exact (held above); SOL at
    1 * 10^18 USD or ETH at 1 * 10^-18 USD overflow or vanish, and every trade refuses it by
    name rather than mispricing."""
    desk = oracle
    env = desk.env
    opens = {c.label: c for c in open_cases(env, desk.markets, desk.newcomer)}
    lps = {c.label: c for c in await lp_cases(env, desk.newcomer, desk.lp_accounts["trader"])}
    for symbol, price, expo, cases, error in (
        ("SOL", 1, 18, [opens["open_position long_sol"], lps["add_liquidity SOL"]], "MathOverflow"),
        (
            "SOL",
            1,
            18,
            [opens["open_position short_sol"], lps["add_liquidity USDC"]],
            "MathOverflow",
        ),
        ("ETH", 1, -18, [opens["open_position long_eth"]], "InsufficientCollateral"),
        ("ETH", 1, -18, [lps["add_liquidity ETH"]], "ZeroAmount"),
    ):
        await env.set_price(symbol, price, expo=expo)
        for case in cases:
            await attack.rejected(
                f"{symbol} at 1e{expo} USD: {case.label}",
                [case.ix],
                case.signers,
                error=error,
                watch=desk.watch(),
                env=env,
            )
        await env.set_price(symbol, SPECS[symbol].price)
    # Prices no reader accepts are refused at the post already (a post that can never be read
    # would stop the feed until the next one).
    now = await env.now()
    for symbol, price, ema, label in (
        ("SOL", 0, 100_00, "zero price"),
        ("ETH", 3_000 * ETH, 0, "zero EMA"),
        ("USDC", I64_MAX + 1, USDC, "price above i64::MAX"),
        ("USDT", USDT, U64_MAX, "EMA at u64::MAX"),
    ):
        await attack.rejected(
            f"{symbol} {label}",
            [price_ix(env, symbol, now, price=price, ema=ema)],
            [env.admin],
            error="InvalidOraclePrice",
            env=env,
        )
