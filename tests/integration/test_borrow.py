"""Borrow fees on a real localnet, with the localnet clock moved by localnet_setClock.

DESIGN §4: hourly fee = (tokens borrowed / tokens in pool) * hourly rate * position size, kept
as a cumulative index per borrowed custody. Rates have 9 decimals (0.01%/h = 100_000); the index
is in units of ``INDEX_ONE = 1e9 * 3600`` (100% of size) and grows exactly: ``idx += rate * Δt``
with ``rate = ceil(util * hourly_rate)``, ``util = ceil(locked / owned)``. A position owes
``ceil((idx - snapshot) * size / INDEX_ONE)``: the fee is rounded once, up, when it is charged
(the pool is never under-paid); the expectations below are computed with that rule.

A long locks only its borrowed part, ``size - collateral`` (in collateral tokens at the min
price); a short locks its full size.

The localnet Clock is whole seconds of wall time plus an offset. To land a view and a close at
exactly "one hour later" the tests set the clock shortly after a wall-clock second begins and
check the block time of what they sent; a scenario that straddled a second is repeated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from solders.signature import Signature
from trade_support import (
    BPS,
    SOL,
    USD,
    USDC,
    Trader,
    account_exists,
    add_pool,
    assert_conserved,
    block_time,
    ceil_div,
    close_position,
    confirmed_clock,
    early_in_second,
    events,
    long_market,
    new_trader,
    open_position,
    position,
    position_key,
    provide_liquidity,
    set_clock,
    short_market,
    tokens_floor,
    wait_confirmed_clock,
)

from perpool import trade, views
from perpool.localnet import LocalnetProcess
from perpool.trade import Market

pytestmark = pytest.mark.asyncio(loop_scope="module")

RATE_ONE = 1_000_000_000
HOUR = 3_600
INDEX_ONE = RATE_ONE * HOUR
"""100% of size accrued: one hour at 100% per hour."""
DAY = 86_400
ATTEMPTS = 3


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet())
    yield pool_env
    await pool_env.client.close()


async def borrow_pool(env: PoolEnv, name: str, symbol: str, hourly_rate: int) -> PoolEnv:
    """A fresh pool whose ``symbol`` custody charges ``hourly_rate`` (seed curve: base 0,
    slope2 0, optimal 100%). Prices may be a day old, so moving the clock by hours needs no
    re-posting (which would itself move the clock)."""
    pool = await add_pool(env, name)
    for spec in pool.specs:
        rate = hourly_rate if spec == symbol else 0
        await pool.configure(spec, hourly_rate=rate, max_price_age_sec=DAY)
    return pool


def seed_rate(locked: int, owned: int, hourly_rate: int) -> int:
    """The custody's hourly rate (9 decimals): utilization and rate round up."""
    utilization = ceil_div(locked * RATE_ONE, owned)
    return ceil_div(hourly_rate * utilization, RATE_ONE)


def fee_for(index_delta: int, size_usd: int) -> int:
    """What a position of ``size_usd`` owes for an index move: rounded up, once."""
    return ceil_div(index_delta * size_usd, INDEX_ONE)


def seed_fee(locked: int, owned: int, hourly_rate: int, elapsed: int, size_usd: int) -> int:
    """DESIGN §4 with the program's rounding: the index step ``rate * elapsed`` is exact."""
    return fee_for(seed_rate(locked, owned, hourly_rate) * elapsed, size_usd)


@dataclass
class TimedClose:
    at: int
    pnl: Any
    quote: Any
    signature: Signature
    received: int


async def close_at(
    env: PoolEnv, trader: Trader, market: Market, symbol: str, at: int
) -> TimedClose | None:
    """Sets the clock to ``at``, reads the get_pnl / get_exit_price_and_fee views there and
    closes the position in the same second. ``None`` if the wall clock ticked in between (the
    position is closed anyway)."""
    await early_in_second()
    await set_clock(env, at)
    seen = await wait_confirmed_clock(env, at)
    pnl = await views.pnl(env.client, market, trader.key)
    quote = await views.exit_price_and_fee(env.client, market, trader.key)
    seen_after = await confirmed_clock(env)
    before = await env.balance(trader.accounts[symbol])
    signature = await close_position(env, trader, market)
    received = await env.balance(trader.accounts[symbol]) - before
    landed = await block_time(env, signature)
    if not seen == seen_after == landed == at:
        return None
    return TimedClose(at, pnl, quote, signature, received)


async def test_seed_borrow_fee_long_one_hour(env: PoolEnv) -> None:
    """Utilization 50%, 0.01%/h, size $1000 → $0.05 after one hour (view and close)."""
    pool = await borrow_pool(env, "seed", "SOL", hourly_rate=100_000)
    await provide_liquidity(pool, "SOL", 10 * SOL)  # $1000 of SOL
    market = long_market(pool)
    size, collateral = 1_000 * USD, 5 * SOL  # $500 of SOL: 2x, $500 borrowed

    for _ in range(ATTEMPTS):
        trader = await new_trader(pool, SOL=collateral)
        await open_position(pool, trader, market, collateral=collateral, size_usd=size)
        pos = await position(pool, market, trader.key)
        custody = await pool.custody("SOL")
        # The borrowed $500 (5 SOL) locked of 10 SOL owned: utilization exactly 50%.
        assert pos.locked_amount == 5 * SOL
        assert (custody.assets.locked, custody.assets.owned) == (5 * SOL, 10 * SOL)
        assert custody.borrow_state.last_update == pos.open_time
        assert pos.borrow_index_snapshot == custody.borrow_state.cumulative_interest
        fees_before = custody.stats.fees_borrow_usd

        closed = await close_at(pool, trader, market, "SOL", pos.open_time + HOUR)
        if closed is None:
            continue
        expected = seed_fee(5 * SOL, 10 * SOL, 100_000, HOUR, size)
        assert expected == 5 * USD // 100  # $0.05
        assert closed.pnl.borrow_fee_usd == expected
        assert (closed.pnl.profit_usd, closed.pnl.loss_usd, closed.pnl.close_fee_usd) == (0, 0, 0)
        assert closed.quote.borrow_fee_usd == expected
        # The close pays collateral - $0.05 in SOL at $100: 4.9995 SOL.
        assert closed.received == tokens_floor(500 * USD - expected, 9, 100_00, -2) == 4_999_500_000
        assert closed.received == closed.quote.payout_amount
        (event,) = [e for e in await events(pool, closed.signature) if e.name == "PositionClosed"]
        assert (event.data.borrow_fee_usd, event.data.payout_amount) == (expected, closed.received)
        custody = await pool.custody("SOL")
        # 0.005%/h (50_000) for 3600 s, exactly.
        assert custody.borrow_state.cumulative_interest - pos.borrow_index_snapshot == (
            50_000 * HOUR
        )
        assert custody.borrow_state.last_update == closed.at
        assert custody.stats.fees_borrow_usd == fees_before + expected
        # The fee's tokens (0.0005 SOL) stay with the LPs.
        assert custody.assets.owned == 10 * SOL + collateral - closed.received
        await assert_conserved(pool)
        return
    pytest.fail(f"no attempt landed view and close in one second ({ATTEMPTS} tries)")


async def test_borrow_fee_short_usdc_three_hours(env: PoolEnv) -> None:
    """Utilization 25%, 0.04%/h, size $2000, three hours → $0.60, paid from USDC collateral."""
    pool = await borrow_pool(env, "short", "USDC", hourly_rate=400_000)
    await provide_liquidity(pool, "USDC", 8_000 * USDC)
    market = short_market(pool)
    size, collateral = 2_000 * USD, 200 * USDC

    for _ in range(ATTEMPTS):
        trader = await new_trader(pool, USDC=collateral)
        await open_position(pool, trader, market, collateral=collateral, size_usd=size)
        pos = await position(pool, market, trader.key)
        custody = await pool.custody("USDC")
        assert (custody.assets.locked, custody.assets.owned) == (2_000 * USDC, 8_000 * USDC)

        closed = await close_at(pool, trader, market, "USDC", pos.open_time + 3 * HOUR)
        if closed is None:
            continue
        expected = seed_fee(2_000 * USDC, 8_000 * USDC, 400_000, 3 * HOUR, size)
        assert expected == 60 * USD // 100  # 0.25 * 0.04% * $2000 * 3 h = $0.60
        assert closed.pnl.borrow_fee_usd == expected
        assert closed.received == collateral - expected  # USDC at $1: one unit per USD unit
        custody = await pool.custody("USDC")
        assert custody.assets.owned == 8_000 * USDC + expected
        await assert_conserved(pool)
        return
    pytest.fail(f"no attempt landed view and close in one second ({ATTEMPTS} tries)")


async def test_accrue_borrow_is_idempotent_within_a_second(env: PoolEnv) -> None:
    pool = await borrow_pool(env, "idem", "SOL", hourly_rate=100_000)
    await provide_liquidity(pool, "SOL", 8 * SOL)
    market = long_market(pool)
    trader = await new_trader(pool, SOL=SOL)
    # $500 on $100 of collateral borrows $400: 4 of 8 SOL locked, 50%.
    await open_position(pool, trader, market, collateral=SOL, size_usd=500 * USD)
    custody = await pool.custody("SOL")
    assert (custody.assets.locked, custody.assets.owned) == (4 * SOL, 8 * SOL)
    keys = pool.client.custody_keys(pool.pool, pool.mint("SOL"))
    accrue = pool.client.ix("accrue_borrow", accounts={"pool": keys.pool, "custody": keys.custody})

    # Twice in one transaction (one Clock): the second adds exactly 0.
    await pool.advance(HOUR)
    before = (await pool.custody("SOL")).borrow_state
    signature = await pool.client.send([accrue, accrue])
    first, second = [e.data for e in await events(pool, signature) if e.name == "BorrowAccrued"]
    elapsed = first.timestamp - before.last_update
    assert elapsed >= HOUR
    assert first.cumulative_interest == before.cumulative_interest + 50_000 * elapsed
    assert (second.cumulative_interest, second.timestamp) == (
        first.cumulative_interest,
        first.timestamp,
    )
    assert first.hourly_rate == second.hourly_rate == 50_000

    # Twice in two transactions landing in the same second: still 0.
    for _ in range(ATTEMPTS):
        target = await confirmed_clock(pool) + 10
        await early_in_second()
        await set_clock(pool, target)
        a = await trade.accrue_borrow(pool.client, pool.pool, pool.mint("SOL"))
        index_a = (await pool.custody("SOL")).borrow_state.cumulative_interest
        b = await trade.accrue_borrow(pool.client, pool.pool, pool.mint("SOL"))
        index_b = (await pool.custody("SOL")).borrow_state.cumulative_interest
        if await block_time(pool, a) == await block_time(pool, b) == target:
            assert index_b == index_a
            break
    else:
        pytest.fail("no two accrue_borrow transactions landed in one second")

    # One second later the index moves, by exactly the rate times the elapsed seconds.
    state = (await pool.custody("SOL")).borrow_state
    await pool.advance(1)
    signature = await trade.accrue_borrow(pool.client, pool.pool, pool.mint("SOL"))
    (event,) = [e.data for e in await events(pool, signature) if e.name == "BorrowAccrued"]
    step = event.timestamp - state.last_update
    assert step >= 1
    assert event.cumulative_interest == state.cumulative_interest + 50_000 * step
    await close_position(pool, trader, market)
    await assert_conserved(pool)


async def test_rate_follows_utilization_interval_by_interval(env: PoolEnv) -> None:
    """An interval is charged at the utilization that held during it: opening a second position
    accrues the first one's interval at the old utilization before locking more."""
    pool = await borrow_pool(env, "order", "SOL", hourly_rate=100_000)
    await provide_liquidity(pool, "SOL", 6 * SOL)
    market = long_market(pool)
    first = await new_trader(pool, SOL=SOL)
    second = await new_trader(pool, SOL=SOL)

    # $250 on $100 of collateral borrows $150: 1.5 SOL locked of 6, then 3 of 6.
    await open_position(pool, first, market, collateral=SOL, size_usd=250 * USD)  # 25%
    a = await position(pool, market, first.key)
    assert (await pool.custody("SOL")).assets.locked == 3 * SOL // 2
    await pool.advance(HOUR // 2)
    await open_position(pool, second, market, collateral=SOL, size_usd=250 * USD)  # then 50%
    b = await position(pool, market, second.key)
    custody = await pool.custody("SOL")
    assert (custody.assets.locked, custody.assets.owned) == (3 * SOL, 6 * SOL)
    assert seed_rate(3 * SOL // 2, 6 * SOL, 100_000) == 25_000
    assert seed_rate(3 * SOL, 6 * SOL, 100_000) == 50_000
    step_25 = 25_000 * (b.open_time - a.open_time)
    assert b.borrow_index_snapshot == a.borrow_index_snapshot + step_25

    await pool.advance(HOUR)
    signature = await close_position(pool, first, market)
    closed_at = (await pool.custody("SOL")).borrow_state
    step_50 = 50_000 * (closed_at.last_update - b.open_time)
    assert closed_at.cumulative_interest == b.borrow_index_snapshot + step_50
    (event,) = [e.data for e in await events(pool, signature) if e.name == "PositionClosed"]
    assert event.borrow_fee_usd == fee_for(step_25 + step_50, 250 * USD)
    # The second position owes only the 50% interval so far.
    pnl = await views.pnl(pool.client, market, second.key)
    assert pnl.borrow_fee_usd >= fee_for(step_50, 250 * USD)
    await close_position(pool, second, market)
    await assert_conserved(pool)


async def test_partial_close_pays_its_share_of_the_borrow_fee(env: PoolEnv) -> None:
    """Closing half pays ceil(half) of the borrow fee owed; the rest stays owed by the remaining
    position (``unpaid_borrow_fee_usd``, index snapshot moved to now) and is paid at its close."""
    pool = await borrow_pool(env, "split", "SOL", hourly_rate=100_000)
    await provide_liquidity(pool, "SOL", 10 * SOL)
    market = long_market(pool)
    size, collateral = 1_000 * USD, 5 * SOL  # 2x: 5 SOL locked of 10, 50%
    trader = await new_trader(pool, SOL=collateral)
    await open_position(pool, trader, market, collateral=collateral, size_usd=size)
    pos = await position(pool, market, trader.key)
    assert pos.locked_amount == 5 * SOL

    await pool.advance(HOUR)
    before = await pool.balance(trader.accounts["SOL"])
    signature = await close_position(pool, trader, market, close_bps=5_000)
    received = await pool.balance(trader.accounts["SOL"]) - before
    custody = await pool.custody("SOL")
    index_1 = custody.borrow_state.cumulative_interest
    elapsed = custody.borrow_state.last_update - pos.open_time
    assert elapsed >= HOUR
    assert index_1 == pos.borrow_index_snapshot + 50_000 * elapsed
    owed = fee_for(index_1 - pos.borrow_index_snapshot, size)
    paid = ceil_div(owed * 5_000, BPS)
    (event,) = [e.data for e in await events(pool, signature) if e.name == "PositionClosed"]
    assert (event.borrow_fee_usd, event.size_usd, event.remaining_size_usd) == (
        paid,
        size // 2,
        size // 2,
    )
    # Price unchanged, no close fee: the $250 collateral slice less the fee, in SOL at $100.
    assert received == event.payout_amount == tokens_floor(250 * USD - paid, 9, 100_00, -2)
    rest = await position(pool, market, trader.key)
    assert (rest.size_usd, rest.collateral_amount, rest.locked_amount) == (
        size // 2,
        collateral // 2,
        5 * SOL // 2,
    )
    assert (rest.unpaid_borrow_fee_usd, rest.borrow_index_snapshot) == (owed - paid, index_1)
    await assert_conserved(pool)

    # The remaining half accrues on its own size from the new snapshot, at the new utilization.
    rate = seed_rate(custody.assets.locked, custody.assets.owned, 100_000)
    await pool.advance(HOUR)
    signature = await close_position(pool, trader, market)
    state = (await pool.custody("SOL")).borrow_state
    assert state.cumulative_interest == index_1 + rate * (state.last_update - rest.update_time)
    (event,) = [e.data for e in await events(pool, signature) if e.name == "PositionClosed"]
    assert event.borrow_fee_usd == owed - paid + fee_for(
        state.cumulative_interest - index_1, size // 2
    )
    assert not await account_exists(pool, position_key(pool, market, trader.key))
    await assert_conserved(pool)


async def test_no_borrow_fee_at_zero_rate(env: PoolEnv) -> None:
    pool = await borrow_pool(env, "free", "SOL", hourly_rate=0)
    await provide_liquidity(pool, "SOL", 10 * SOL)
    market = long_market(pool)
    trader = await new_trader(pool, SOL=SOL)
    await open_position(pool, trader, market, collateral=SOL, size_usd=500 * USD)
    await pool.advance(10 * HOUR)
    assert (await views.pnl(pool.client, market, trader.key)).borrow_fee_usd == 0
    before = await pool.balance(trader.accounts["SOL"])
    await close_position(pool, trader, market)
    assert await pool.balance(trader.accounts["SOL"]) - before == SOL
    await assert_conserved(pool)
