"""The client's Python quotes (``perpool.quotes``) equal the program's own view instructions for
LP deposits and withdrawals, swaps, AUM, the LP token price, oracle prices and positions, with
the risk engine switched on: minimum trading fee, the dynamic LP fee curve, slippage, funding, a
two-step liquidation ladder with an insurance fund, and a synthetic "ETH²" payoff market with
stable collateral; spot ≠ EMA and open positions in the book. A liquidation's settlement is
checked against the Python mirror as well."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import DEFAULT_TOKENS, PoolEnv, TokenSpec, build_pool_env
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from trade_support import block_time, confirmed_clock, events, post_price

from perpool import math as m
from perpool import pda, views
from perpool import quotes as q
from perpool.client import ViewError
from perpool.localnet import LocalnetProcess, read_keypair
from perpool.program import error_names, load_idl
from perpool.trade import LONG, SHORT, Market, liquidate, open_position

pytestmark = pytest.mark.asyncio(loop_scope="module")

ERROR_NAMES = error_names(load_idl())

T = TypeVar("T")
USD = 1_000_000
ETH2 = "ETH2"
TOKENS = (*DEFAULT_TOKENS, TokenSpec(ETH2, 9, False, 1_000_00, -2))  # oracle ETH at $1000

FEES: dict[str, Any] = {
    "liquidity_min_fee_bps": 10,
    "liquidity_max_fee_bps": 80,
    "liquidity_fee_k_bps": 500,
    "swap_bps": 25,
    "open_position_bps": 10,
    "close_position_bps": 10,
    "min_fee_usd": 500_000,  # $0.50: binds on trades below $500
    "protocol_share_bps": 2_000,
    "hourly_rate": 100_000,
    "max_price_error_bps": 500,
    "max_price_age_sec": 86_400,  # the test moves the clock by hours
}
RISK: dict[str, Any] = {
    "liquidation_reward_bps": 100,
    "liquidation_steps": ((10_000, 5_000), (5_000, 10_000)),
    "auto_close_fee_usd": USD,
    "insurance_fund_fraction_bps": 2_500,
    "insurance_fund_cap_usd": 100 * USD,
    "funding_c": 10,
    "max_funding_rate": 5_000_000,  # 0.5 %/h
    "long_a_bps": 10,
    "long_b_bps": 100,
    "short_a_bps": 20,
    "short_b_bps": 50,
    "min_trade_size_usd": 10 * USD,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "SOL": FEES | RISK,
    "USDC": FEES | {"min_liquidity_deposit_usd": USD},
    # 0.001·ETH²: $1000 per unit at ETH $1000; a position may win at most 2x its size.
    ETH2: FEES | RISK | {"payoff": "square", "payoff_scale": 1_000_000, "max_profit_bps": 20_000},
}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    faucet = read_keypair(net.faucet_keypair_path)
    pool = await build_pool_env(net.url, faucet, tokens=TOKENS, configs=CONFIGS)
    lp = await pool.new_wallet()
    lp_tokens = await pool.lp_account(lp.pubkey())
    from perpool.lp import add_liquidity

    for symbol, amount in (("SOL", 50 * 10**9), ("USDC", 5_000 * 10**6)):
        funding = await pool.fund(lp.pubkey(), symbol, amount)
        await add_liquidity(
            pool.client,
            lp,
            pool.pool,
            pool.mint(symbol),
            amount,
            funding_account=funding,
            lp_token_account=lp_tokens,
        )
    for name in TRADER_NAMES:
        _TRADERS[name] = await pool.new_wallet()
    for owner, market, collateral, size in book(pool):
        symbol = "SOL" if market.collateral_mint == pool.mint("SOL") else "USDC"
        funding_account = await pool.fund(owner.pubkey(), symbol, collateral)
        await open_position(
            pool.client,
            owner,
            market,
            collateral_amount=collateral,
            size_usd=size,
            price_limit=10**15 if market.side == LONG else 0,
            funding_account=funding_account,
        )
    # An hour of borrow fees and funding on the skewed books.
    await pool.advance(3_600)
    # Spot and EMA apart, with a confidence interval, so the high/low valuations differ.
    await pool.set_price("SOL", 103_37, ema=101_90, conf=25)
    await pool.set_price(ETH2, 1_010_00, ema=1_005_00)
    await pool.set_price("USDC", 1_000_000)
    yield pool
    await pool.client.close()


TRADER_NAMES = ("long", "levered", "short", "eth2 long", "eth2 short")
_TRADERS: dict[str, Keypair] = {}


def trader(name: str) -> Keypair:
    """The wallet of one book entry (funded by the fixture)."""
    return _TRADERS[name]


def book(env: PoolEnv) -> list[tuple[Keypair, Market, int, int]]:
    """(owner, market, collateral, size) of the positions the fixture opens."""
    sol, usdc, eth2 = env.mint("SOL"), env.mint("USDC"), env.mint(ETH2)
    return [
        (trader("long"), Market.long(env.pool, sol), 10**9, 300 * USD),
        (trader("levered"), Market.long(env.pool, sol), 10**9 // 2, 2_000 * USD),  # ~40x
        (trader("short"), Market.short(env.pool, sol, usdc), 100 * USD, 400 * USD),
        (trader("eth2 long"), Market.payoff(env.pool, eth2, usdc, LONG), 100 * USD, 450 * USD),
        (trader("eth2 short"), Market.payoff(env.pool, eth2, usdc, SHORT), 50 * USD, 200 * USD),
    ]


async def priced_custodies(env: PoolEnv) -> list[q.PricedCustody]:
    """Every custody of the pool, in pool order, with its prices as ``Custody::prices`` gives
    them (the payoff applied for ETH²)."""
    client = env.client
    pool = await client.fetch("Pool", pda.pool(env.pool))
    entries = []
    for key in pool.custodies:
        decoded = await client.fetch("Custody", key)
        custody = q.CustodyState.from_account(decoded, key=key)
        oracle = await client.fetch("CustomOracle", decoded.oracle.oracle_account)
        prices = q.custody_prices(custody, q.Prices.from_custom_oracle(oracle))
        entries.append(q.PricedCustody(custody, prices))
    return entries


async def pool_aum(env: PoolEnv) -> int:
    """The AUM recorded in the ``Pool`` account: what slippage and funding are relative to."""
    return int((await env.client.fetch("Pool", pda.pool(env.pool))).aum_usd)


async def lp_supply(env: PoolEnv) -> int:
    mint = pda.lp_token_mint(pda.pool(env.pool))
    return int((await env.client.connection.get_token_supply(mint)).value.amount)


def error_name(exc: ViewError) -> str:
    """The PerpoolError name of a failed view (custom error code → IDL name)."""
    code = int(str(exc.err).split("InstructionErrorCustom(")[1].split(")")[0])
    return ERROR_NAMES[code]


def entry_for(entries: list[q.PricedCustody], key: Pubkey) -> q.PricedCustody:
    return next(e for e in entries if e.custody.key == key)


def custody_key(env: PoolEnv, symbol: str) -> Pubkey:
    return env.client.custody_keys(env.pool, env.mint(symbol)).custody


@pytest.mark.parametrize(
    ("symbol", "amount"),
    [("SOL", 1_234_567_891), ("USDC", 1_000_001), ("USDC", 10_000 * 10**6)],
)
async def test_add_liquidity_quote_equals_view(env: PoolEnv, symbol: str, amount: int) -> None:
    view: Any = await views.add_liquidity_amount_and_fee(
        env.client, env.pool, env.mint(symbol), amount
    )
    expected = q.get_add_liquidity_amount_and_fee(
        await priced_custodies(env), custody_key(env, symbol), await lp_supply(env), amount
    )
    assert q.AddLiquidityQuote.from_decoded(view) == expected
    assert FEES["liquidity_min_fee_bps"] <= expected.fee_bps <= FEES["liquidity_max_fee_bps"]
    assert expected.fee_amount == m.fee_tokens(amount, expected.fee_bps)


async def test_dust_deposit_is_refused_by_view_and_mirror_alike(env: PoolEnv) -> None:
    """One lamport is worth less than one LP unit: both refuse it with ZeroAmount."""
    with pytest.raises(ViewError) as view_error:
        await views.add_liquidity_amount_and_fee(env.client, env.pool, env.mint("SOL"), 1)
    with pytest.raises(q.PROGRAM_ERRORS) as mirrored:
        q.get_add_liquidity_amount_and_fee(
            await priced_custodies(env), custody_key(env, "SOL"), await lp_supply(env), 1
        )
    mirrored_error = mirrored.value
    assert isinstance(mirrored_error, q.PROGRAM_ERRORS)
    assert error_name(view_error.value) == mirrored_error.program_error == "ZeroAmount"


@pytest.mark.parametrize(
    ("symbol", "lp_amount"), [("SOL", 1_000_000), ("SOL", 777_777_777), ("USDC", 123_456_789)]
)
async def test_remove_liquidity_quote_equals_view(
    env: PoolEnv, symbol: str, lp_amount: int
) -> None:
    view: Any = await views.remove_liquidity_amount_and_fee(
        env.client, env.pool, env.mint(symbol), lp_amount
    )
    expected = q.get_remove_liquidity_amount_and_fee(
        await priced_custodies(env), custody_key(env, symbol), await lp_supply(env), lp_amount
    )
    assert q.RemoveLiquidityQuote.from_decoded(view) == expected
    assert expected.amount_out > 0


@pytest.mark.parametrize(
    ("src", "dst", "amount"),
    [("SOL", "USDC", 1_500_000_000), ("USDC", "SOL", 250 * 10**6), ("USDC", "SOL", 7)],
)
async def test_swap_quote_equals_view(env: PoolEnv, src: str, dst: str, amount: int) -> None:
    view: Any = await views.swap_amount_and_fees(
        env.client, env.pool, env.mint(src), env.mint(dst), amount
    )
    entries = await priced_custodies(env)
    receiving = entry_for(entries, custody_key(env, src))
    dispensing = entry_for(entries, custody_key(env, dst))
    expected = q.get_swap_amount_and_fees(
        receiving.custody, receiving.prices, dispensing.custody, dispensing.prices, amount
    )
    assert q.SwapQuote.from_decoded(view) == expected


async def test_aum_and_lp_price_equal_views(env: PoolEnv) -> None:
    entries = await priced_custodies(env)
    supply = await lp_supply(env)
    expected = q.get_assets_under_management(entries, supply)
    view: Any = await views.assets_under_management(env.client, env.pool)
    assert q.AumView.from_decoded(view) == expected
    # Spot ≠ EMA: minting is priced at a higher AUM than burning.
    assert expected.high_usd > expected.low_usd
    assert await views.lp_token_price(env.client, env.pool) == m.lp_token_price_usd(
        expected.spot_usd, supply
    )


@pytest.mark.parametrize("symbol", ["SOL", "USDC"])
async def test_oracle_price_equals_view(env: PoolEnv, symbol: str) -> None:
    view: Any = await views.oracle_price(env.client, env.pool, env.mint(symbol))
    entry = entry_for(await priced_custodies(env), custody_key(env, symbol))
    assert q.OraclePriceView.from_decoded(view) == q.get_oracle_price(entry.prices)


async def mirrored_error(call: Callable[[], object]) -> str:
    with pytest.raises(q.PROGRAM_ERRORS) as raised:
        call()
    error = raised.value
    assert isinstance(error, q.PROGRAM_ERRORS)
    return error.program_error


async def test_deposit_below_the_minimum_is_refused_alike(env: PoolEnv) -> None:
    with pytest.raises(ViewError) as view_error:
        await views.add_liquidity_amount_and_fee(env.client, env.pool, env.mint("USDC"), 999_999)
    entries, supply = await priced_custodies(env), await lp_supply(env)
    name = await mirrored_error(
        lambda: q.get_add_liquidity_amount_and_fee(
            entries, custody_key(env, "USDC"), supply, 999_999
        )
    )
    assert error_name(view_error.value) == name == "DepositTooSmall"


async def test_payoff_market_holds_no_tokens_alike(env: PoolEnv) -> None:
    entries, supply = await priced_custodies(env), await lp_supply(env)
    eth2, usdc = (
        entry_for(entries, custody_key(env, ETH2)),
        entry_for(entries, custody_key(env, "USDC")),
    )
    cases: list[tuple[Awaitable[Any], Callable[[], object]]] = [
        (
            views.add_liquidity_amount_and_fee(env.client, env.pool, env.mint(ETH2), 10**9),
            lambda: q.get_add_liquidity_amount_and_fee(entries, eth2.custody.key, supply, 10**9),
        ),
        (
            views.remove_liquidity_amount_and_fee(env.client, env.pool, env.mint(ETH2), 10**6),
            lambda: q.get_remove_liquidity_amount_and_fee(entries, eth2.custody.key, supply, 10**6),
        ),
        (
            views.swap_amount_and_fees(
                env.client, env.pool, env.mint("USDC"), env.mint(ETH2), 10**6
            ),
            lambda: q.get_swap_amount_and_fees(
                usdc.custody, usdc.prices, eth2.custody, eth2.prices, 10**6
            ),
        ),
    ]
    for view, mirror in cases:
        with pytest.raises(ViewError) as view_error:
            await view
        assert error_name(view_error.value) == await mirrored_error(mirror) == "SyntheticCustody"


async def stable_clock(env: PoolEnv, read: Callable[[], Awaitable[T]]) -> tuple[int, T]:
    """Runs ``read`` (views simulated at the confirmed bank) and returns it with the confirmed
    Clock it ran at; repeated if a new second began meanwhile."""
    for _ in range(5):
        before = await confirmed_clock(env)
        result = await read()
        if await confirmed_clock(env) == before:
            return before, result
    pytest.fail("the confirmed clock kept moving")


def side_of(market: Market) -> m.Side:
    return m.Side.LONG if market.side == LONG else m.Side.SHORT


async def market_inputs(env: PoolEnv, market: Market) -> tuple[q.PricedCustody, q.PricedCustody]:
    entries = await priced_custodies(env)
    traded = entry_for(entries, env.client.custody_keys(env.pool, market.mint).custody)
    collateral = entry_for(
        entries, env.client.custody_keys(env.pool, market.collateral_mint).custody
    )
    return traded, collateral


async def fetch_position(env: PoolEnv, market: Market, owner: Pubkey) -> q.PositionState:
    from perpool.trade import position_key

    decoded = await env.client.fetch("Position", position_key(env.client, market, owner))
    return q.PositionState.from_account(decoded)


@pytest.mark.parametrize("index", range(len(TRADER_NAMES)), ids=TRADER_NAMES)
async def test_position_views_equal_quotes(env: PoolEnv, index: int) -> None:
    """Entry quote of a new trade and every position view, with impact, minimum fee, borrow
    fee and funding owed (or due) after an hour, for token and payoff markets."""
    owner, market, collateral, size = book(env)[index]

    async def read() -> tuple[Any, ...]:
        key = owner.pubkey()
        return (
            await views.entry_price_and_fee(env.client, market, collateral, size),
            await views.entry_price_and_fee(env.client, market, collateral, 40 * USD),
            await views.pnl(env.client, market, key),
            await views.exit_price_and_fee(env.client, market, key),
            await views.exit_price_and_fee(env.client, market, key, 3_333),
            await views.liquidation_state(env.client, market, key),
            await views.liquidation_price(env.client, market, key),
        )

    now, (entry, small, pnl, full, part, liquidatable, liquidation_price) = await stable_clock(
        env, read
    )
    traded, coll = await market_inputs(env, market)
    inputs = (traded.custody, traded.prices, coll.custody, coll.prices)
    aum = await pool_aum(env)
    side = side_of(market)
    expected_entry = q.get_entry_price_and_fee(side, *inputs, collateral, size, aum)
    assert q.OpenQuote.from_decoded(entry) == expected_entry
    assert expected_entry.price_impact > 0
    assert q.OpenQuote.from_decoded(small).fee_usd == FEES["min_fee_usd"]  # 10 bps of $40 < $0.50
    pos = await fetch_position(env, market, owner.pubkey())
    assert q.PositionPnl.from_decoded(pnl) == q.get_pnl(pos, *inputs, now, aum)
    expected_full = q.get_exit_price_and_fee(pos, *inputs, now, m.BPS_DENOMINATOR, aum)
    assert q.CloseQuote.from_decoded(full) == expected_full
    assert q.CloseQuote.from_decoded(part) == q.get_exit_price_and_fee(
        pos, *inputs, now, 3_333, aum
    )
    assert liquidatable == q.get_liquidation_state(pos, *inputs, now, aum)
    assert liquidation_price == q.get_liquidation_price(pos, *inputs, now, aum)
    # Funding is on and the books are skewed: every position pays or receives some.
    assert expected_full.funding_paid_usd + expected_full.funding_received_usd > 0
    assert expected_full.price_impact > 0


async def test_liquidation_settles_as_mirrored(env: PoolEnv) -> None:
    """The ~40x SOL long is pushed under its maintenance margin; ``liquidate`` pays, books
    and leaves exactly what :func:`perpool.quotes.liquidate` computes at the block's time."""
    owner, market, _, _ = book(env)[1]
    traded, _ = await market_inputs(env, market)
    pos = await fetch_position(env, market, owner.pubkey())
    aum, now = await pool_aum(env), await confirmed_clock(env)
    oracle = await env.client.fetch(
        "CustomOracle", env.client.custody_keys(env.pool, market.mint).oracle
    )
    # The highest price (in $0.01 steps) at which the mirror sees the first step apply.
    price = int(oracle.price)
    while True:
        price -= 1
        prices = q.Prices.of(price, oracle.expo)
        custody, _ = q.load_position_custodies(traded.custody, traded.custody, now + 2, aum)
        if q.position_liquidation_step(pos, custody, prices, custody, prices, aum) is not None:
            break
    await post_price(env, "SOL", price)
    liquidator = await env.new_wallet()
    receiving = await env.token_account(liquidator.pubkey(), "SOL")
    owner_account = await env.token_account(owner.pubkey(), "SOL")
    before, _ = await market_inputs(env, market)
    aum = await pool_aum(env)
    signature = await liquidate(
        env.client,
        liquidator,
        market,
        owner.pubkey(),
        receiving_account=receiving,
        owner_receiving_account=owner_account,
    )
    at = await block_time(env, signature)
    c = before.custody
    result = q.liquidate(pos, c, before.prices, c, before.prices, at, aum)
    a = result.amounts
    (event,) = [e.data for e in await events(env, signature) if e.name == "PositionLiquidated"]
    observed = (
        event.step,
        event.close_bps,
        event.discount_amount,
        event.reward_amount,
        event.insurance_amount,
        event.protocol_amount,
        event.owner_amount,
        event.retained_amount,
        event.remaining_size_usd,
        event.auto_close_fee_usd,
        event.funding_paid_usd,
        event.funding_received_usd,
        event.bad_debt_usd,
    )
    assert observed == (
        a.step,
        a.close_bps,
        a.discount_amount,
        a.reward_amount,
        a.insurance_amount,
        a.protocol_amount,
        a.owner_amount,
        a.retained_amount,
        a.remaining_size_usd,
        a.quote.auto_close_fee_usd,
        a.quote.funding_paid_usd,
        a.quote.funding_received_usd,
        a.quote.bad_debt_usd,
    )
    assert a.discount_amount > 0
    assert a.insurance_amount > 0
    after, _ = await market_inputs(env, market)
    for part in ("assets", "insurance", "longs"):
        assert getattr(after.custody, part) == getattr(result.custody, part), part
    # The indices are exact; ``current_rate`` is display-only (refreshed after the book change).
    display_only = {"current_rate": 0}
    for part in ("funding_state", "borrow_state"):
        observed_state = replace(getattr(after.custody, part), **display_only)
        assert observed_state == replace(getattr(result.custody, part), **display_only), part
    if result.position is None:
        assert a.step == 1
    else:
        assert a.step == 0
        assert await fetch_position(env, market, owner.pubkey()) == result.position
