"""Classes 24-26, the risk limits: utilization (LPs and swaps cannot take locked tokens, opens
stop at the maximum utilization), leverage bounds (the initial leverage window on open, on adding
and on removing collateral, in every market) and borrow accrual (idempotent within a second,
equal to the Python model, not dodged by partial closes or collateral changes).

Each class runs on a desk of its own. Boundaries are computed from the program's accounts with
the client's mirror of its math (``perpool.quotes``), then checked from both sides on chain: the
case at the limit lands (held), one unit past it is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio
from adversarial_markets import (
    ADD_COLLATERAL,
    BPS,
    HOUR,
    MARKET_KEYS,
    OPEN_AMOUNTS,
    Desk,
    build_desk,
    collateral_of,
    desk_configs,
    funded_trader,
    markets_of,
    oracle_state,
)
from adversary import ETH, SOL, USD, USDC, USDT, Attack, World, symbol_of
from pool_env import PoolEnv
from trade_support import (
    Trader,
    block_time,
    ceil_div,
    close_position,
    confirmed_clock,
    early_in_second,
    events,
    open_position,
    position,
    set_clock,
    tokens_ceil,
    tokens_floor,
    usd_of,
    wait_confirmed_clock,
)

from perpool import lp, pda, trade, views
from perpool import quotes as q
from perpool.math import Side, pricing_supply
from perpool.trade import Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(24)]

UTIL_BPS = 8_000
"""Maximum utilization of the utilization desk's custodies."""
MIN_LEVERAGE = 2 * BPS
MAX_INITIAL = 20 * BPS
LEVERAGE_FEES: dict[str, Any] = {
    "open_position_bps": 10,
    "close_position_bps": 10,
    "min_fee_usd": USD // 10,
    "min_initial_leverage": MIN_LEVERAGE,
    "max_initial_leverage": MAX_INITIAL,
    "max_leverage": 50 * BPS,
}
"""The leverage desk: a 2x-20x window for new positions, with trading fees so the boundary
depends on the fee taken out of the collateral."""
HOURLY_RATE = 10_000_000
"""1% per hour at full utilization."""


def value_usd(env: PoolEnv, symbol: str, amount: int) -> int:
    spec = env.specs[symbol]
    return usd_of(amount, spec.decimals, spec.price, spec.expo)


def traded_symbol(env: PoolEnv, market: Market) -> str:
    return symbol_of(env, market.mint)


# ---- class 24: utilization -------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def util(world: World) -> Desk:
    return await build_desk(world, "util", desk_configs({"max_utilization_bps": UTIL_BPS}))


UTIL_COLLATERAL = {
    "long_sol": 10 * SOL,
    "short_sol": 2_000 * USDC,
    "long_eth": ETH,
    "short_eth": 2_000 * USDT,
    "long_ethsq": 2_000 * USDC,
}


def sizes_at_the_limit(env: PoolEnv, key: str, collateral: int, room: int) -> tuple[int, int]:
    """The size whose lock fits ``room`` tokens, and one that needs a token more. A long locks
    its borrowed part (size - collateral) in its own token, rounded up; a short and a payoff
    position lock their size (at most ``max_profit_bps`` = 100% here) in a $1 stable."""
    symbol = collateral_of(env, markets_of(env)[key])
    if key in ("long_sol", "long_eth"):
        base = value_usd(env, symbol, collateral)
        return base + value_usd(env, symbol, room), base + value_usd(env, symbol, room + 1) + 1
    return room, room + 1


async def lp_for_usd(env: PoolEnv, usd: int, *, round_up: bool) -> int:
    """LP tokens worth ``usd`` at the AUM LP burns are priced at."""
    aum = await views.assets_under_management(env.client, env.pool)
    supply = pricing_supply(aum.lp_supply)
    if round_up:
        return int(ceil_div(usd * supply, aum.low_usd)) + 1
    return int(usd * supply // aum.low_usd)


async def test_utilization_limits_opens_withdrawals_and_swaps(util: Desk, attack: Attack) -> None:
    """Per collateral custody: an open one token past the 80% maximum utilization is refused and
    the one right at it lands; then, with 80% locked, the LP cannot withdraw the free tokens and
    a token more (nor its whole stake), a swap cannot pay them out, while the free part itself
    can leave; the locked tokens always stay."""
    env = util.env
    client = env.client
    swapper = await funded_trader(env, SOL=10 * SOL, ETH=100 * ETH, USDC=500_000 * USDC)
    provider = util.lp
    watch = [*util.watch(), *swapper.accounts.values()]
    for key in MARKET_KEYS:
        market = util.markets[key]
        symbol = collateral_of(env, market)
        custody = await env.custody(symbol)
        max_locked = custody.assets.owned * UTIL_BPS // BPS
        room = max_locked - custody.assets.locked
        fits, over = sizes_at_the_limit(env, key, UTIL_COLLATERAL[key], room)
        opener = await funded_trader(env, **{symbol: UTIL_COLLATERAL[key]})
        await attack.rejected(
            f"{key}: open locking one {symbol} unit past 80% utilization",
            [
                trade.open_position_ix(
                    client,
                    opener.key,
                    market,
                    collateral_amount=UTIL_COLLATERAL[key],
                    size_usd=over,
                    funding_account=opener.accounts[symbol],
                )
            ],
            [opener.wallet],
            error="MaxUtilizationExceeded",
            watch=[*watch, *opener.accounts.values()],
            env=env,
        )
        async with attack.holds(f"{key}: open right at 80% utilization"):
            await open_position(env, opener, market, collateral=UTIL_COLLATERAL[key], size_usd=fits)
            custody = await env.custody(symbol)
            assert custody.assets.locked <= max_locked
            assert max_locked - custody.assets.locked <= 10, (max_locked, custody.assets)
        if key != "long_ethsq":
            await locked_tokens_stay(env, util, symbol, provider, swapper, attack, watch)
        await close_position(env, opener, market)


SWAP_SOURCE = {"SOL": "USDC", "USDC": "ETH", "ETH": "USDC", "USDT": "ETH"}


async def locked_tokens_stay(
    env: PoolEnv,
    desk: Desk,
    symbol: str,
    provider: Trader,
    swapper: Trader,
    attack: Attack,
    watch: list[Any],
) -> None:
    client = env.client
    custody = await env.custody(symbol)
    free = custody.assets.owned - custody.assets.locked
    lp_account = desk.lp_accounts["lp"]
    over_lp = await lp_for_usd(env, value_usd(env, symbol, free + 1) + 1, round_up=True)
    for label, lp_amount in (
        ("the free tokens and one more", over_lp),
        ("its whole stake", await env.balance(lp_account)),
    ):
        await attack.rejected(
            f"{symbol} 80% locked: LP withdraws {label}",
            [
                await lp.remove_liquidity_ix(
                    client,
                    provider.key,
                    env.pool,
                    env.mint(symbol),
                    lp_amount,
                    receiving_account=provider.accounts[symbol],
                    lp_token_account=lp_account,
                )
            ],
            [provider.wallet],
            error="InsufficientLiquidity",
            watch=watch,
            env=env,
        )
    async with attack.holds(f"{symbol} 80% locked: LP withdraws 99% of the free tokens"):
        lp_amount = await lp_for_usd(env, value_usd(env, symbol, free * 99 // 100), round_up=False)
        before = await env.balance(provider.accounts[symbol])
        await lp.remove_liquidity(
            client,
            provider.wallet,
            env.pool,
            env.mint(symbol),
            lp_amount,
            receiving_account=provider.accounts[symbol],
            lp_token_account=lp_account,
        )
        assert await env.balance(provider.accounts[symbol]) - before <= free
        after = await env.custody(symbol)
        assert after.assets.locked == custody.assets.locked <= after.assets.owned
    custody = await env.custody(symbol)
    free = custody.assets.owned - custody.assets.locked
    source = SWAP_SOURCE[symbol]
    # Paid at the out token's price: an input worth one token more than is free.
    amount_in = tokens_ceil(
        value_usd(env, symbol, free + 1) + 1,
        env.specs[source].decimals,
        env.specs[source].price,
        env.specs[source].expo,
    )
    await attack.rejected(
        f"{symbol} locked: swap {source}->{symbol} paying out the free tokens and one more",
        [
            trade.swap_ix(
                client,
                swapper.key,
                env.pool,
                env.mint(source),
                env.mint(symbol),
                amount_in,
                funding_account=swapper.accounts[source],
                receiving_account=swapper.accounts[symbol],
            )
        ],
        [swapper.wallet],
        error="InsufficientLiquidity",
        watch=watch,
        env=env,
    )
    async with attack.holds(f"{symbol} locked: swap {source}->{symbol} for half the free tokens"):
        spec = env.specs[source]
        amount_in = tokens_floor(
            value_usd(env, symbol, free // 2), spec.decimals, spec.price, spec.expo
        )
        await trade.swap(
            client,
            swapper.wallet,
            env.pool,
            env.mint(source),
            env.mint(symbol),
            amount_in,
            funding_account=swapper.accounts[source],
            receiving_account=swapper.accounts[symbol],
        )
        after = await env.custody(symbol)
        assert after.assets.locked == custody.assets.locked <= after.assets.owned


# ---- class 25: leverage bounds ---------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def leverage(world: World) -> Desk:
    return await build_desk(world, "leverage", desk_configs(LEVERAGE_FEES))


async def open_model(env: PoolEnv, market: Market) -> Callable[[int, int], q.OpenQuote]:
    """``quote_open`` over the market's custodies as they are on chain now."""
    client = env.client
    now = await env.now()
    traded, collateral = traded_symbol(env, market), collateral_of(env, market)

    async def state(symbol: str) -> tuple[q.CustodyState, q.Prices]:
        key = client.custody_keys(env.pool, env.mint(symbol)).custody
        custody = q.CustodyState.from_account(await client.fetch("Custody", key), key=key)
        oracle = q.CustomOracleState.from_account(await oracle_state(env, symbol))
        return custody, q.read_custody_prices(custody, oracle, now)

    custody, prices = await state(traded)
    coll, coll_prices = await state(collateral)
    aum = (await client.fetch("Pool", pda.pool(env.pool))).aum_usd
    side = Side.LONG if market.side == "long" else Side.SHORT

    def quote(collateral_amount: int, size_usd: int) -> q.OpenQuote:
        return q.quote_open(
            side, custody, prices, coll, coll_prices, collateral_amount, size_usd, aum
        )

    return quote


def largest(ok: Callable[[int], bool], low: int, high: int) -> int:
    """The largest ``x`` in ``[low, high]`` with ``ok(x)``, for ``ok`` true up to a point."""
    assert ok(low)
    assert not ok(high)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if ok(mid) else (low, mid)
    return low


def leverage_within(
    quote: Callable[[int, int], q.OpenQuote], collateral: int, limit: int
) -> Callable[[int], bool]:
    """Whether a size opens at or under ``limit`` (a size the open refuses for its fee counts as
    over)."""

    def ok(size: int) -> bool:
        try:
            return quote(collateral, size).leverage_bps <= limit
        except q.PROGRAM_ERRORS:
            return False

    return ok


@pytest.mark.attack_class(25)
async def test_open_within_the_initial_leverage_window(leverage: Desk, attack: Attack) -> None:
    """Per market: the largest size at the maximum initial leverage (after the open fee comes out
    of the collateral) lands; one unit more, and one bp of leverage more, are refused; the
    smallest size at the minimum initial leverage lands, one unit less is refused."""
    for key in MARKET_KEYS:
        await open_window(leverage, key, attack)


def below_min_leverage(
    quote: Callable[[int, int], q.OpenQuote], collateral: int
) -> Callable[[int], bool]:
    """Whether a size is under the minimum initial leverage (on the collateral after the fee)."""

    def ok(size: int) -> bool:
        return size * BPS < MIN_LEVERAGE * quote(collateral, size).collateral_usd

    return ok


def open_ix(desk: Desk, trader: Trader, key: str, size: int) -> Any:
    env = desk.env
    market = desk.markets[key]
    return trade.open_position_ix(
        env.client,
        trader.key,
        market,
        collateral_amount=OPEN_AMOUNTS[key][0],
        size_usd=size,
        funding_account=trader.accounts[collateral_of(env, market)],
    )


async def open_window(desk: Desk, key: str, attack: Attack) -> None:
    env = desk.env
    market = desk.markets[key]
    symbol = collateral_of(env, market)
    collateral = OPEN_AMOUNTS[key][0]
    quote = await open_model(env, market)
    top = largest(leverage_within(quote, collateral, MAX_INITIAL), USD, 10**12)
    bp_over = largest(leverage_within(quote, collateral, MAX_INITIAL + 1), top, 10**12)
    assert quote(collateral, bp_over).leverage_bps == MAX_INITIAL + 1
    bottom = largest(below_min_leverage(quote, collateral), USD, top) + 1
    # Twice the collateral: the first round trip leaves its fees behind.
    opener = await funded_trader(env, **{symbol: 2 * collateral})
    watch = [*desk.watch(), *opener.accounts.values()]
    for label, size, error in (
        ("one unit past the maximum initial leverage", top + 1, "LeverageTooHigh"),
        ("one bp of leverage past the maximum", bp_over, "LeverageTooHigh"),
        ("one unit under the minimum initial leverage", bottom - 1, "LeverageTooLow"),
    ):
        await attack.rejected(
            f"{key}: open {label}",
            [open_ix(desk, opener, key, size)],
            [opener.wallet],
            error=error,
            watch=watch,
            env=env,
        )
    for label, size in (("at the maximum", top), ("at the minimum", bottom)):
        async with attack.holds(f"{key}: open {label} initial leverage"):
            await env.client.send([open_ix(desk, opener, key, size)], [opener.wallet])
            pos = await position(env, market, opener.key)
            assert pos.size_usd == size
            assert ceil_div(size * BPS, pos.collateral_usd) <= MAX_INITIAL
            assert size * BPS >= MIN_LEVERAGE * pos.collateral_usd
            await close_position(env, opener, market)


@pytest.mark.attack_class(25)
async def test_collateral_changes_stay_within_the_window(leverage: Desk, attack: Attack) -> None:
    """Per market, on the trader's 5x position: adding collateral up to exactly the minimum
    initial leverage lands and a USD unit more is refused; then removing collateral down to
    exactly the maximum initial leverage (counting the loss and the fees a close would charge)
    lands and a USD unit more is refused."""
    env, trader = leverage.env, leverage.trader
    client = env.client
    for key in MARKET_KEYS:
        market = leverage.markets[key]
        symbol = collateral_of(env, market)
        spec = env.specs[symbol]
        account = trader.accounts[symbol]
        pos = await position(env, market, trader.key)
        room_usd = pos.size_usd * BPS // MIN_LEVERAGE - pos.collateral_usd
        at = tokens_floor(room_usd, spec.decimals, spec.price, spec.expo)
        past = tokens_ceil(room_usd + 1, spec.decimals, spec.price, spec.expo)
        await attack.rejected(
            f"{key}: add collateral one USD unit past the minimum initial leverage",
            [trade.add_collateral_ix(client, trader.key, market, past, funding_account=account)],
            [trader.wallet],
            error="LeverageTooLow",
            watch=leverage.watch(),
            env=env,
        )
        async with attack.holds(f"{key}: add collateral down to the minimum initial leverage"):
            await trade.add_collateral(client, trader.wallet, market, at, funding_account=account)
            after = await position(env, market, trader.key)
            assert after.size_usd * BPS >= MIN_LEVERAGE * after.collateral_usd
            assert after.collateral_usd > pos.collateral_usd
        pos = await position(env, market, trader.key)
        pnl = await views.pnl(client, market, trader.key)
        fees = pnl.close_fee_usd + pnl.borrow_fee_usd + pnl.funding_paid_usd
        min_margin = ceil_div(pos.size_usd * BPS, MAX_INITIAL)
        room = pos.collateral_usd - pnl.loss_usd - fees - min_margin
        await attack.rejected(
            f"{key}: remove collateral one USD unit past the maximum initial leverage",
            [
                trade.remove_collateral_ix(
                    client, trader.key, market, room + 1, receiving_account=account
                )
            ],
            [trader.wallet],
            error="LeverageTooHigh",
            watch=leverage.watch(),
            env=env,
        )
        async with attack.holds(f"{key}: remove collateral up to the maximum initial leverage"):
            await trade.remove_collateral(
                client, trader.wallet, market, room, receiving_account=account
            )
            after = await position(env, market, trader.key)
            assert after.collateral_usd - pnl.loss_usd - fees == min_margin
            assert ceil_div(after.size_usd * BPS, min_margin) <= MAX_INITIAL


# ---- class 26: borrow accrual ----------------------------------------------------------------

BORROW_LIQUIDITY = {"SOL": 100 * SOL, "ETH": 3 * ETH, "USDC": 10_000 * USDC, "USDT": 10_000 * USDT}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def borrow(world: World) -> Desk:
    configs = desk_configs({"hourly_rate": HOURLY_RATE, "max_price_age_sec": 86_400})
    return await build_desk(world, "borrow", configs, liquidity=BORROW_LIQUIDITY)


def accrue_ix(env: PoolEnv, symbol: str) -> Any:
    keys = env.client.custody_keys(env.pool, env.mint(symbol))
    return env.client.ix("accrue_borrow", accounts={"pool": keys.pool, "custody": keys.custody})


async def custody_state(env: PoolEnv, symbol: str) -> q.CustodyState:
    key = env.client.custody_keys(env.pool, env.mint(symbol)).custody
    return q.CustodyState.from_account(await env.client.fetch("Custody", key), key=key)


async def accrued(env: PoolEnv, signature: Any) -> list[Any]:
    return [e.data for e in await events(env, signature) if e.name == "BorrowAccrued"]


@pytest.mark.attack_class(26)
async def test_accrual_twice_in_one_second_adds_nothing(borrow: Desk, attack: Attack) -> None:
    env = borrow.env
    await env.advance(60)
    for symbol in env.specs:
        async with attack.holds(f"{symbol}: three accruals in one transaction add once"):
            before = (await custody_state(env, symbol)).borrow_state
            signature = await env.client.send([accrue_ix(env, symbol)] * 3)
            first, *again = await accrued(env, signature)
            assert first.timestamp > before.last_update
            if symbol != "ETHSQ":  # a payoff custody lends nothing: its rate is 0
                assert first.cumulative_interest > before.cumulative_interest
            for event in again:
                assert (event.cumulative_interest, event.timestamp) == (
                    first.cumulative_interest,
                    first.timestamp,
                )
    async with attack.holds("SOL: two accrual transactions landing in one second add once"):
        for _ in range(3):
            target = await confirmed_clock(env) + 5
            await early_in_second()
            await set_clock(env, target)
            await wait_confirmed_clock(env, target)
            a = await env.client.send([accrue_ix(env, "SOL")])
            index_a = (await custody_state(env, "SOL")).borrow_state.cumulative_interest
            b = await env.client.send([accrue_ix(env, "SOL")])
            index_b = (await custody_state(env, "SOL")).borrow_state.cumulative_interest
            if await block_time(env, a) == await block_time(env, b) == target:
                assert index_b == index_a
                break
        else:
            raise AssertionError("no two accrual transactions landed in one second")


@pytest.mark.attack_class(26)
async def test_accrual_equals_the_model_after_the_clock_moves(borrow: Desk, attack: Attack) -> None:
    """An hour and a bit later, each custody's index, rate and time are exactly what
    ``perpool.quotes.accrue_borrow`` computes from the account before."""
    env = borrow.env
    await env.advance(HOUR + 17)
    for symbol in env.specs:
        async with attack.holds(f"{symbol}: index after an hour equals the model"):
            before = await custody_state(env, symbol)
            (event,) = await accrued(env, await env.client.send([accrue_ix(env, symbol)]))
            model = q.accrue_borrow(before, event.timestamp)
            after = await custody_state(env, symbol)
            assert after.borrow_state == model.borrow_state
            assert event.cumulative_interest == model.borrow_state.cumulative_interest
            if symbol != "ETHSQ":
                assert event.timestamp - before.borrow_state.last_update >= HOUR


@pytest.mark.attack_class(26)
async def test_partial_closes_and_collateral_changes_do_not_dodge_the_fee(
    borrow: Desk, attack: Attack
) -> None:
    """Per market, three identical positions opened in one transaction: one closed in two
    halves, one whose collateral was taken out and put back half-way, one left alone; all
    closed in one transaction an hour later. The halves pay at least the full close (at most a
    unit more, for rounding each half up); the collateral changes change nothing."""
    for key in MARKET_KEYS:
        await fee_twins(borrow, key, attack)


def close_ix(desk: Desk, trader: Trader, key: str, close_bps: int = BPS) -> Any:
    env = desk.env
    market = desk.markets[key]
    receiving = trader.accounts[collateral_of(env, market)]
    return trade.close_position_ix(
        env.client, trader.key, market, receiving_account=receiving, close_bps=close_bps
    )


async def fee_twins(borrow: Desk, key: str, attack: Attack) -> None:
    env = borrow.env
    client = env.client
    market = borrow.markets[key]
    symbol = collateral_of(env, market)
    collateral, size = OPEN_AMOUNTS[key]
    splitter, shuffler, holder = [
        await funded_trader(env, **{symbol: 2 * collateral}) for _ in range(3)
    ]
    opens = [
        trade.open_position_ix(
            client,
            t.key,
            market,
            collateral_amount=collateral,
            size_usd=size,
            funding_account=t.accounts[symbol],
        )
        for t in (splitter, shuffler, holder)
    ]
    await client.send(opens, [splitter.wallet, shuffler.wallet, holder.wallet])
    await env.advance(HOUR // 2)
    account = shuffler.accounts[symbol]
    await client.send(
        [
            trade.remove_collateral_ix(
                client, shuffler.key, market, 10 * USD, receiving_account=account
            ),
            trade.add_collateral_ix(
                client, shuffler.key, market, ADD_COLLATERAL[symbol], funding_account=account
            ),
        ],
        [shuffler.wallet],
    )
    moved = await position(env, market, shuffler.key)
    kept = await position(env, market, holder.key)
    await env.advance(HOUR // 2)
    signature = await client.send(
        [
            close_ix(borrow, splitter, key, 5_000),
            close_ix(borrow, splitter, key),
            close_ix(borrow, shuffler, key),
            close_ix(borrow, holder, key),
        ],
        [splitter.wallet, shuffler.wallet, holder.wallet],
    )
    closed = await events(env, signature)
    half, rest, shuffled, alone = [
        e.data.borrow_fee_usd for e in closed if e.name == "PositionClosed"
    ]
    async with attack.holds(f"{key}: closing in two halves pays the full borrow fee"):
        assert alone > 0
        assert alone <= half + rest <= alone + 1, (half, rest, alone)
    async with attack.holds(f"{key}: a collateral change half-way does not reset the fee"):
        assert moved.borrow_index_snapshot == kept.borrow_index_snapshot
        assert shuffled == alone, (shuffled, alone)


@pytest.mark.attack_class(26)
async def test_a_close_charges_the_fee_the_model_computes(borrow: Desk, attack: Attack) -> None:
    """Per market: accrue then close the trader's position in one transaction; the fee charged is
    the model's ``position_borrow_fee_usd`` at the model's accrued index."""
    env, trader = borrow.env, borrow.trader
    client = env.client
    await env.advance(HOUR)
    for key in MARKET_KEYS:
        market = borrow.markets[key]
        symbol = collateral_of(env, market)
        async with attack.holds(f"{key}: the borrow fee charged at close equals the model"):
            pos = q.PositionState.from_account(await position(env, market, trader.key))
            before = await custody_state(env, symbol)
            signature = await client.send(
                [
                    accrue_ix(env, symbol),
                    trade.close_position_ix(
                        client, trader.key, market, receiving_account=trader.accounts[symbol]
                    ),
                ],
                [trader.wallet],
            )
            (accrual,) = await accrued(env, signature)
            (closed,) = [e.data for e in await events(env, signature) if e.name == "PositionClosed"]
            model = q.accrue_borrow(before, accrual.timestamp)
            assert accrual.cumulative_interest == model.borrow_state.cumulative_interest
            expected = q.position_borrow_fee_usd(pos, model)
            assert expected > 0
            assert closed.borrow_fee_usd == expected, (closed.borrow_fee_usd, expected)
