"""The risk engine against a real localnet: minimum and auto-close fees, minimum sizes, the
dynamic LP fee, slippage, funding, the multi-step liquidation ladder and the insurance fund.

Every expectation is computed here from DESIGN §4's formulas with plain integer arithmetic
(the worked numbers are in the comments), never with ``perpool.math``. Each test builds its
own pool on one chain, so its numbers do not depend on the order tests run in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, TokenSpec, build_pool_env
from trade_support import (
    BPS,
    RATE_ONE,
    SOL,
    USD,
    USDC,
    Trader,
    add_pool,
    assert_conserved,
    ceil_div,
    close_position,
    events,
    long_market,
    new_trader,
    open_position,
    position,
    position_key,
    provide_liquidity,
    rejected,
    set_prices,
    short_market,
    tokens_ceil,
    tokens_floor,
    usd_ceil,
    usd_of,
)

from perpool import lp, pda, trade, views
from perpool.localnet import LocalnetProcess
from perpool.math import pricing_supply
from perpool.trade import Market, close_position_ix, open_position_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPO = -8
P100 = 100 * 10**8
"""SOL at $100 (exponent -8)."""
TOKENS = (
    TokenSpec("SOL", 9, False, P100, EXPO),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
)
INDEX_ONE = RATE_ONE * 3_600
HOUR = 3_600


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet(), TOKENS)
    yield pool_env
    await pool_env.client.close()


async def new_pool(
    env: PoolEnv, name: str, liquidity: bool = True, **configs: dict[str, Any]
) -> PoolEnv:
    """A fresh pool with SOL at $100 and USDC at $1, each custody configured with
    ``configs[symbol]``, and (by default) 100 SOL + 10,000 USDC of liquidity."""
    pool = await add_pool(env, name, TOKENS)
    for symbol, config in configs.items():
        await pool.configure(symbol, **({"max_price_age_sec": 3_600} | config))
    if liquidity:
        await provide_liquidity(pool, "SOL", 100 * SOL)
        await provide_liquidity(pool, "USDC", 10_000 * USDC)
    return pool


async def pool_aum(pool: PoolEnv) -> int:
    account = await pool.client.fetch("Pool", pda.pool(pool.pool))
    return int(account.aum_usd)


async def only_event(pool: PoolEnv, signature: Any, name: str) -> Any:
    found = [e for e in await events(pool, signature) if e.name == name]
    assert len(found) == 1, [e.name for e in await events(pool, signature)]
    data: Any = found[0].data
    return data


async def liquidate(pool: PoolEnv, liquidator: Trader, market: Market, owner: Trader) -> Any:
    symbol = "SOL" if market.collateral_mint == pool.mint("SOL") else "USDC"
    signature = await trade.liquidate(
        pool.client,
        liquidator.wallet,
        market,
        owner.key,
        receiving_account=liquidator.accounts[symbol],
        owner_receiving_account=owner.accounts[symbol],
    )
    return await only_event(pool, signature, "PositionLiquidated")


# ---- trading fee floor, auto-close fee, minimums ----------------------------------------------


async def test_minimum_fee_floors_small_trades_and_splits_with_the_protocol(env: PoolEnv) -> None:
    fees = {"open_position_bps": 10, "close_position_bps": 10, "min_fee_usd": 5 * USD}
    pool = await new_pool(env, "minfee", SOL=fees | {"protocol_share_bps": 5_000})
    market = long_market(pool)
    small = await new_trader(pool, SOL=10 * SOL)
    protocol_before = (await pool.custody("SOL")).assets.protocol_fees
    # $200 at 10 bps is $0.20: the $5 floor applies; 0.05 SOL at $100, half to the protocol.
    opened = await only_event(
        pool,
        await open_position(pool, small, market, collateral=SOL, size_usd=200 * USD),
        "PositionOpened",
    )
    assert opened.fee_usd == 5 * USD
    assert opened.collateral_amount == SOL - 50_000_000
    assert (await pool.custody("SOL")).assets.protocol_fees == protocol_before + 25_000_000
    # $10,000 at 10 bps is $10, above the floor.
    large = await new_trader(pool, SOL=20 * SOL)
    opened = await only_event(
        pool,
        await open_position(pool, large, market, collateral=10 * SOL, size_usd=10_000 * USD),
        "PositionOpened",
    )
    assert opened.fee_usd == 10 * USD
    closed = await only_event(pool, await close_position(pool, small, market), "PositionClosed")
    assert closed.fee_usd == 5 * USD
    await assert_conserved(pool)


async def test_auto_close_fee_is_charged_on_liquidations_only(env: PoolEnv) -> None:
    config = {"max_leverage": 100 * BPS, "auto_close_fee_usd": 2 * USD}
    pool = await new_pool(env, "autofee", SOL=config)
    market = long_market(pool)
    trader = await new_trader(pool, SOL=2 * SOL)
    keeper = await new_trader(pool)
    await open_position(pool, trader, market, collateral=SOL, size_usd=2_000 * USD)
    # 20x long: margin at $95.80 is 100 - 2000 * 4.2% = $16 < $20 (1% of size).
    await set_prices(pool, SOL=9_580_000_000)
    before = await pool.balance(trader.accounts["SOL"])
    event = await liquidate(pool, keeper, market, trader)
    assert event.auto_close_fee_usd == 2 * USD
    # Payout: $16 less the $2 fee = $14 of SOL at $95.80 to the owner (no discount configured).
    assert event.owner_amount == tokens_floor(14 * USD, 9, 9_580_000_000, EXPO)
    assert await pool.balance(trader.accounts["SOL"]) == before + event.owner_amount
    await assert_conserved(pool)


async def test_minimum_trade_size_and_deposit(env: PoolEnv) -> None:
    config = {"min_trade_size_usd": 50 * USD, "min_liquidity_deposit_usd": 100 * USD}
    pool = await new_pool(env, "minimums", SOL=config)
    market = long_market(pool)
    trader = await new_trader(pool, SOL=10 * SOL)
    client = pool.client

    def open_ix(size: int) -> Any:
        return open_position_ix(
            client,
            trader.key,
            market,
            collateral_amount=SOL // 4,
            size_usd=size,
            funding_account=trader.accounts["SOL"],
        )

    await rejected(pool, [open_ix(49 * USD)], [trader.wallet], "TradeTooSmall")
    await open_position(pool, trader, market, collateral=SOL, size_usd=100 * USD)
    # Closing 60% would leave $40, below the minimum; closing 50% leaves exactly $50.
    close_60 = close_position_ix(
        client, trader.key, market, receiving_account=trader.accounts["SOL"], close_bps=6_000
    )
    await rejected(pool, [close_60], [trader.wallet], "TradeTooSmall")
    await close_position(pool, trader, market, close_bps=5_000)
    assert (await position(pool, market, trader.key)).size_usd == 50 * USD

    lp_account = await pool.lp_account(trader.key)
    deposit = await lp.add_liquidity_ix(
        client,
        trader.key,
        pool.pool,
        pool.mint("SOL"),
        SOL - 1,  # $99.999999999
        funding_account=trader.accounts["SOL"],
        lp_token_account=lp_account,
    )
    await rejected(pool, [deposit], [trader.wallet], "DepositTooSmall")


# ---- dynamic LP fee ----------------------------------------------------------------------------


def curve_fee_bps(value: int, aum: int, delta: int, adding: bool, target: int, k: int) -> int:
    """DESIGN §4 LP fee with min 10 bps, max 100 bps."""
    low, high = 10, 100
    before = value * BPS // aum
    after = (
        (value + delta) * BPS // (aum + delta) if adding else (value - delta) * BPS // (aum - delta)
    )
    d_before, d_after = abs(before - target), abs(after - target)
    if d_after <= d_before:
        return low
    return low + ceil_div((high - low) * d_after, d_after + k)


async def test_liquidity_fee_rises_away_from_target_and_goes_to_the_other_lps(env: PoolEnv) -> None:
    curve = {
        "liquidity_min_fee_bps": 10,
        "liquidity_max_fee_bps": 100,
        "liquidity_fee_k_bps": 1_000,
        "target_bps": 5_000,
    }
    pool = await new_pool(env, "lpfee", SOL=curve, USDC=curve)
    usdc, sol = pool.mint("USDC"), pool.mint("SOL")
    sol_value = (await pool.custody("SOL")).assets.owned * 100 // 1_000  # $ (6 dp) at $100
    usdc_value = (await pool.custody("USDC")).assets.owned
    aum = sol_value + usdc_value
    assert aum == await pool_aum(pool) == 20_000 * USD

    # 5,000 USDC: USDC 50% → 60%, 10 pts from target: 10 + ceil(90 * 1000 / 2000) = 55 bps.
    amount = 5_000 * USDC
    expected = curve_fee_bps(usdc_value, aum, amount, True, 5_000, 1_000)
    assert expected == 55
    quote = await views.add_liquidity_amount_and_fee(pool.client, pool.pool, usdc, amount)
    assert (quote.fee_bps, quote.fee_amount) == (55, ceil_div(amount * 55, BPS))
    # With K = 9000 the same deposit pays 10 + ceil(90 * 1000 / 10000) = 19 bps.
    await pool.configure(
        "USDC", **(curve | {"max_price_age_sec": 3_600, "liquidity_fee_k_bps": 9_000})
    )
    slow = await views.add_liquidity_amount_and_fee(pool.client, pool.pool, usdc, amount)
    assert slow.fee_bps == curve_fee_bps(usdc_value, aum, amount, True, 5_000, 9_000) == 19
    await pool.configure("USDC", **(curve | {"max_price_age_sec": 3_600}))

    before = await views.assets_under_management(pool.client, pool.pool)
    depositor = await new_trader(pool, USDC=amount)
    lp_account = await pool.lp_account(depositor.key)
    signature = await lp.add_liquidity(
        pool.client,
        depositor.wallet,
        pool.pool,
        usdc,
        amount,
        funding_account=depositor.accounts["USDC"],
        lp_token_account=lp_account,
    )
    added = await only_event(pool, signature, "LiquidityAdded")
    assert added.fee_amount == ceil_div(amount * 55, BPS)
    # The whole deposit is owned by the LPs; the fee raised the LP token's price for the others.
    assert (await pool.custody("USDC")).assets.owned == usdc_value + amount
    after = await views.assets_under_management(pool.client, pool.pool)
    assert after.spot_usd * pricing_supply(before.lp_supply) > before.spot_usd * pricing_supply(
        after.lp_supply
    )

    # SOL is now 40% of the pool: a SOL deposit moves it toward 50% and pays the minimum.
    toward = await views.add_liquidity_amount_and_fee(pool.client, pool.pool, sol, SOL)
    assert toward.fee_bps == 10
    # Withdrawing SOL moves it further away: the fee follows the curve.
    lp_in = 1_000 * USD
    rquote = await views.remove_liquidity_amount_and_fee(pool.client, pool.pool, sol, lp_in)
    aum = await pool_aum(pool)
    sol_value = (await pool.custody("SOL")).assets.owned * 100 // 1_000
    assert rquote.fee_bps == curve_fee_bps(sol_value, aum, rquote.withdraw_usd, False, 5_000, 1_000)
    assert rquote.fee_bps > 10
    await assert_conserved(pool)


# ---- slippage ----------------------------------------------------------------------------------


def impact_9dp(size: int, liquidity: int, a: int, b: int) -> int:
    x = ceil_div(size * RATE_ONE, liquidity)
    return min(ceil_div(a * x + b * ceil_div(x * x, RATE_ONE), BPS), RATE_ONE // 10)


async def test_slippage_moves_the_price_against_the_trader_and_pays_the_lps(env: PoolEnv) -> None:
    curve = {"long_a_bps": 10, "long_b_bps": 100, "short_a_bps": 20, "short_b_bps": 200}
    pool = await new_pool(env, "slippage", SOL=curve)
    aum = await pool_aum(pool)
    assert aum == 20_000 * USD
    size = 2_000 * USD  # 10% of the pool
    long_impact = impact_9dp(size, aum, 10, 100)
    short_impact = impact_9dp(size, aum, 20, 200)
    # Long: 10 * 0.1 + 100 * 0.01 = 2 bps; short: 20 * 0.1 + 200 * 0.01 = 4 bps.
    assert (long_impact, short_impact) == (200_000, 400_000)
    quote = await views.entry_price_and_fee(
        pool.client, long_market(pool), collateral_amount=5 * SOL, size_usd=size
    )
    assert quote.price_impact == long_impact
    assert quote.entry_price == 100_020_000_000  # $100 * 1.0002

    long_trader = await new_trader(pool, SOL=10 * SOL)
    short_trader = await new_trader(pool, USDC=1_000 * USDC)
    sol_owned = (await pool.custody("SOL")).assets.owned
    await open_position(pool, long_trader, long_market(pool), collateral=5 * SOL, size_usd=size)
    await open_position(
        pool, short_trader, short_market(pool), collateral=500 * USDC, size_usd=size
    )
    assert (await position(pool, long_market(pool), long_trader.key)).price == 100_020_000_000
    assert (await position(pool, short_market(pool), short_trader.key)).price == 99_960_000_000

    # Closing at the same oracle price sells at $100 * (1 - 0.0002): the round trip loses
    # 2 * ~2 bps of $2000 to the pool.
    closed = await only_event(
        pool, await close_position(pool, long_trader, long_market(pool)), "PositionClosed"
    )
    assert closed.exit_price == 99_980_000_000
    loss = ceil_div(size * (100_020_000_000 - 99_980_000_000), 100_020_000_000)
    assert closed.loss_usd == loss
    assert (await pool.custody("SOL")).assets.owned > sol_owned
    # Funding is off (C = 0) in this pool.
    assert closed.funding_paid_usd == closed.funding_received_usd == 0
    await assert_conserved(pool)


# ---- funding -----------------------------------------------------------------------------------


async def test_funding_is_paid_by_the_heavy_side_to_the_light_side(env: PoolEnv) -> None:
    pool = await new_pool(
        env, "funding", SOL={"funding_c": 100, "max_funding_rate": RATE_ONE // 100}
    )
    longs, shorts = long_market(pool), short_market(pool)
    long_trader = await new_trader(pool, SOL=20 * SOL)
    short_trader = await new_trader(pool, USDC=2_000 * USDC)
    await open_position(pool, long_trader, longs, collateral=10 * SOL, size_usd=3_000 * USD)
    await open_position(pool, short_trader, shorts, collateral=500 * USDC, size_usd=1_000 * USD)
    aum = await pool_aum(pool)
    # Skew $2000 over C * AUM = 100 * $20,000: 0.1% per hour... *1e9 = 1_000_000.
    rate = ceil_div(2_000 * USD * RATE_ONE, 100 * aum)
    assert rate == 1_000_000
    start = (await pool.custody("SOL")).funding_state
    assert start.current_rate == rate

    await pool.advance(HOUR)
    await trade.update_funding(pool.client, pool.pool, pool.mint("SOL"))
    end = (await pool.custody("SOL")).funding_state
    elapsed = end.last_update - start.last_update
    assert elapsed >= HOUR
    assert end.long_index - start.long_index == rate * elapsed
    assert start.short_index - end.short_index == rate * elapsed * 3_000 // 1_000

    await set_prices(pool)  # fresh oracle prices after the hour
    long_position = await position(pool, longs, long_trader.key)
    short_position = await position(pool, shorts, short_trader.key)
    paid = await only_event(pool, await close_position(pool, long_trader, longs), "PositionClosed")
    index = (await pool.custody("SOL")).funding_state
    assert paid.funding_paid_usd == ceil_div(
        (index.long_index - long_position.funding_index_snapshot) * 3_000 * USD, INDEX_ONE
    )
    assert paid.funding_received_usd == 0
    # About $3 for the longs' hour (0.1% of $3000).
    assert 3 * USD <= paid.funding_paid_usd < 4 * USD
    received = await only_event(
        pool, await close_position(pool, short_trader, shorts), "PositionClosed"
    )
    index = (await pool.custody("SOL")).funding_state
    assert received.funding_paid_usd == 0
    assert received.funding_received_usd == (
        (short_position.funding_index_snapshot - index.short_index) * 1_000 * USD // INDEX_ONE
    )
    # The light side receives what the heavy side paid, less rounding.
    assert 0 < received.funding_received_usd <= paid.funding_paid_usd
    await assert_conserved(pool)


# ---- multi-step liquidation --------------------------------------------------------------------


async def test_liquidation_walks_down_the_ladder(env: PoolEnv) -> None:
    ladder = {
        "max_leverage": 100 * BPS,  # maintenance margin 1%
        "liquidation_steps": ((BPS, 5_000), (5_000, BPS)),
        "liquidation_reward_bps": 20,
    }
    pool = await new_pool(env, "ladder", SOL=ladder)
    market = long_market(pool)
    trader = await new_trader(pool, SOL=2 * SOL)
    keeper = await new_trader(pool)
    await open_position(pool, trader, market, collateral=SOL, size_usd=2_000 * USD)
    key = position_key(pool, market, trader.key)

    # $95.80: margin 100 - 2000 * 4.2% = $16, below step 0 ($20) but not step 1 ($10).
    p1 = 9_580_000_000
    await set_prices(pool, SOL=p1)
    first = await liquidate(pool, keeper, market, trader)
    assert (first.step, first.close_bps, first.size_usd) == (0, 5_000, 1_000 * USD)
    # The half pays $50 of collateral - $42 loss = $8; the discount is half the full 20 bps.
    payout = tokens_floor(8 * USD, 9, p1, EXPO)
    discount = tokens_floor(1 * USD, 9, p1, EXPO)  # 10 bps of $1000
    assert first.loss_usd == 42 * USD
    assert (first.discount_amount, first.reward_amount) == (discount, discount)
    assert first.owner_amount == 0
    assert first.retained_amount == payout - discount
    after = await position(pool, market, trader.key)
    assert after.size_usd == 1_000 * USD
    assert after.collateral_amount == SOL // 2 + payout - discount
    assert after.collateral_usd == 50 * USD + usd_of(payout - discount, 9, p1, EXPO)
    # Deleveraged: margin ≈ 50 + 7 - 42 = $15 ≥ $10 (1% of $1000): healthy again.
    assert not await views.liquidation_state(pool.client, market, trader.key)
    await assert_conserved(pool)

    # $94.60: margin ≈ 57 - 1000 * 5.4% = $3, below step 1 ($5): the rest closes with the full
    # 20 bps discount ($2); what is left goes to the owner.
    p2 = 9_460_000_000
    await set_prices(pool, SOL=p2)
    owner_before = await pool.balance(trader.accounts["SOL"])
    last = await liquidate(pool, keeper, market, trader)
    assert (last.step, last.close_bps, last.remaining_size_usd) == (1, BPS, 0)
    assert last.discount_amount == tokens_floor(2 * USD, 9, p2, EXPO)
    margin = after.collateral_usd - last.loss_usd
    assert last.owner_amount == tokens_floor(margin, 9, p2, EXPO) - last.discount_amount
    assert await pool.balance(trader.accounts["SOL"]) == owner_before + last.owner_amount
    assert (await pool.client.connection.get_account_info(key)).value is None
    await assert_conserved(pool)


# ---- insurance fund ----------------------------------------------------------------------------


async def test_insurance_fund_fills_to_its_cap_then_covers_bad_debt(env: PoolEnv) -> None:
    config = {
        "max_leverage": 100 * BPS,
        "liquidation_reward_bps": 50,
        "insurance_fund_fraction_bps": 5_000,
        "insurance_fund_cap_usd": 7 * USD,
    }
    pool = await new_pool(env, "insurance", SOL=config)
    market = long_market(pool)
    keeper = await new_trader(pool)
    traders = [await new_trader(pool, SOL=2 * SOL) for _ in range(2)]
    for trader in traders:
        await open_position(pool, trader, market, collateral=SOL, size_usd=2_000 * USD)
    p1 = 9_580_000_000
    await set_prices(pool, SOL=p1)
    protocol_before = (await pool.custody("SOL")).assets.protocol_fees

    # First: a 0.5% discount on $2000 = $10 (out of the $16 left), half ($5) to the fund, under
    # the $7 cap.
    first = await liquidate(pool, keeper, market, traders[0])
    discount = tokens_floor(10 * USD, 9, p1, EXPO)
    assert first.discount_amount == discount
    assert first.insurance_amount == discount // 2
    assert first.reward_amount == discount - discount // 2
    assert first.protocol_amount == 0
    fund = (await pool.custody("SOL")).insurance
    assert fund.balance == fund.total_inflow == discount // 2

    # Second: only the room left under the cap goes in; the excess goes to the protocol.
    room = tokens_floor(7 * USD - usd_ceil(fund.balance, 9, p1, EXPO), 9, p1, EXPO)
    second = await liquidate(pool, keeper, market, traders[1])
    assert second.insurance_amount == room < discount // 2
    assert second.protocol_amount == discount // 2 - room
    custody = await pool.custody("SOL")
    assert custody.insurance.balance == discount // 2 + room
    assert custody.assets.protocol_fees == protocol_before + second.protocol_amount
    await assert_conserved(pool)

    # A 40x long gapped through its collateral: $4000 * 2.625% = $105 loss on $100 → $5 of bad
    # debt, which the fund covers before the LPs.
    await set_prices(pool, SOL=P100)
    gapped = await new_trader(pool, SOL=2 * SOL)
    await open_position(pool, gapped, market, collateral=SOL, size_usd=4_000 * USD)
    p2 = 9_737_500_000
    await set_prices(pool, SOL=p2)
    before = await pool.custody("SOL")
    signature = await trade.liquidate(
        pool.client,
        keeper.wallet,
        market,
        gapped.key,
        receiving_account=keeper.accounts["SOL"],
        owner_receiving_account=gapped.accounts["SOL"],
    )
    liquidated = await only_event(pool, signature, "PositionLiquidated")
    assert liquidated.bad_debt_usd == 5 * USD
    assert liquidated.owner_amount == liquidated.reward_amount == 0
    covered = tokens_ceil(5 * USD, 9, p2, EXPO)
    change = await only_event(pool, signature, "InsuranceFundChanged")
    assert (change.outflow, change.bad_debt_usd) == (covered, 5 * USD)
    after = await pool.custody("SOL")
    assert after.insurance.balance == before.insurance.balance - covered
    assert after.insurance.bad_debt_covered_usd == 5 * USD
    assert after.insurance.bad_debt_uncovered_usd == 0
    # The LPs keep the whole collateral (1 SOL) and the fund makes up the shortfall.
    assert after.assets.owned == before.assets.owned + SOL + covered
    await assert_conserved(pool)
