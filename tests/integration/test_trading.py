"""Trading on a real localnet: open, close (full and partial), collateral changes, price
limits, leverage bounds, side rules, utilization and open-interest caps, with real SPL tokens.

Every expectation is computed here from DESIGN §4 with integer arithmetic (prices are posted
with exponent -2 for SOL and -6 for USDC; stored prices have 9 decimals, USD 6). After each
flow the pool's accounting must match its vaults (``assert_conserved``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from rejections import chain_state, send_failing
from solders.instruction import Instruction
from solders.pubkey import Pubkey
from trade_support import (
    BPS,
    PRICE_9DP,
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
    events,
    lamports,
    long_market,
    new_trader,
    open_position,
    position,
    position_key,
    post_price,
    provide_liquidity,
    rejected,
    set_prices,
    short_market,
    tokens_ceil,
    tokens_floor,
    usd_of,
    view_rejected,
    without_signer,
)

from perpool import pda, trade, views
from perpool import quotes as q
from perpool.localnet import LocalnetProcess
from perpool.math import Side
from perpool.trade import (
    Market,
    add_collateral_ix,
    close_position_ix,
    open_position_ix,
    remove_collateral_ix,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL_PRICE = 100_00  # $100.00, expo -2
SOL_EXPO = -2
USDC_PRICE = 1_000_000  # $1.000000, expo -6
ENTRY_9DP = 100 * PRICE_9DP
T = TypeVar("T")


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    """The main pool with 100 SOL and 100_000 USDC of liquidity, all fees zero."""
    pool_env = await build_pool_env(net.url, net.faucet())
    await provide_liquidity(pool_env, "SOL", 100 * SOL)
    await provide_liquidity(pool_env, "USDC", 100_000 * USDC)
    yield pool_env
    await pool_env.client.close()


@pytest_asyncio.fixture(loop_scope="module")
async def main(env: PoolEnv) -> PoolEnv:
    """The main pool at SOL $100 / USDC $1 with fresh prices and default (fee-free) configs."""
    await env.configure("SOL")
    await env.configure("USDC")
    await set_prices(env, SOL=SOL_PRICE, USDC=USDC_PRICE)
    return env


async def close_and_receive(
    env: PoolEnv, trader: Trader, market: Market, symbol: str, **kwargs: int
) -> int:
    """Closes (part of) the position; returns the tokens the trader received."""
    before = await env.balance(trader.accounts[symbol])
    await close_position(env, trader, market, **kwargs)
    return await env.balance(trader.accounts[symbol]) - before


# --------------------------------------------------------------------------------------------
# DESIGN §4 seed: 2x, size $100, collateral $50, no fees
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_price", "expected_usd", "expected_lamports"),
    [(120_00, 70, 583_333_333), (80_00, 30, 375_000_000)],
    ids=["sol+20%", "sol-20%"],
)
async def test_seed_long_2x_sol_collateral(
    main: PoolEnv, new_price: int, expected_usd: int, expected_lamports: int
) -> None:
    env = main
    market = long_market(env)
    collateral = SOL // 2  # $50 of SOL at $100
    trader = await new_trader(env, SOL=collateral)
    sig = await open_position(env, trader, market, collateral=collateral, size_usd=100 * USD)

    pos = await position(env, market, trader.key)
    assert (pos.price, pos.size_usd, pos.collateral_usd) == (ENTRY_9DP, 100 * USD, 50 * USD)
    assert pos.collateral_amount == collateral
    # A long locks only what it borrows: $100 - $50 of collateral = $50 of SOL at $100.
    assert pos.locked_amount == SOL // 2
    assert await env.balance(trader.accounts["SOL"]) == 0
    (opened,) = [e for e in await events(env, sig) if e.name == "PositionOpened"]
    assert (opened.data.size_usd, opened.data.collateral_usd, opened.data.fee_usd) == (
        100 * USD,
        50 * USD,
        0,
    )
    await assert_conserved(env)

    await set_prices(env, SOL=new_price)
    pnl = await views.pnl(env.client, market, trader.key)
    move = abs(new_price - SOL_PRICE) * USD // 100  # $20: 20% of a $100 position
    assert (pnl.profit_usd, pnl.loss_usd) == ((move, 0) if new_price > SOL_PRICE else (0, move))
    assert (pnl.borrow_fee_usd, pnl.close_fee_usd) == (0, 0)

    custody_before = await env.custody("SOL")
    rent = await lamports(env, position_key(env, market, trader.key))
    wallet_before = await lamports(env, trader.key)
    received = await close_and_receive(env, trader, market, "SOL")

    # $70 (or $30) of SOL at the new price: floor(70 / 120 SOL) in lamports.
    assert received == expected_usd * SOL * 100 // new_price == expected_lamports
    assert received == tokens_floor(expected_usd * USD, 9, new_price, SOL_EXPO)
    # Within what the pool may pay for it: the collateral plus the tokens locked for it.
    assert received <= collateral + pos.locked_amount
    assert not await account_exists(env, position_key(env, market, trader.key))
    assert await lamports(env, trader.key) == wallet_before + rent  # the admin paid the tx fee
    custody = await env.custody("SOL")
    assert custody.assets.collateral == custody_before.assets.collateral - collateral
    assert custody.assets.locked == custody_before.assets.locked - SOL // 2
    assert custody.assets.owned == custody_before.assets.owned + collateral - received
    await assert_conserved(env)


@pytest.mark.parametrize(
    ("new_price", "expected_usd"),
    [(120_00, 30), (80_00, 70)],
    ids=["sol+20%", "sol-20%"],
)
async def test_seed_short_2x_usdc_collateral(
    main: PoolEnv, new_price: int, expected_usd: int
) -> None:
    env = main
    market = short_market(env)
    collateral = 50 * USDC
    trader = await new_trader(env, USDC=collateral)
    await open_position(env, trader, market, collateral=collateral, size_usd=100 * USD)
    pos = await position(env, market, trader.key)
    assert (pos.price, pos.size_usd, pos.collateral_usd, pos.collateral_amount) == (
        ENTRY_9DP,
        100 * USD,
        50 * USD,
        collateral,
    )
    assert pos.locked_amount == 100 * USDC
    await assert_conserved(env)

    await set_prices(env, SOL=new_price)
    usdc_before = await env.custody("USDC")
    received = await close_and_receive(env, trader, market, "USDC")
    assert received == expected_usd * USDC
    usdc = await env.custody("USDC")
    assert usdc.assets.owned == usdc_before.assets.owned + collateral - received
    assert usdc.assets.locked == usdc_before.assets.locked - 100 * USDC
    sol = await env.custody("SOL")
    assert (sol.shorts.open_positions, sol.shorts.size_usd, sol.shorts.collateral_usd) == (0, 0, 0)
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Partial close
# --------------------------------------------------------------------------------------------


async def test_partial_close_half_then_rest(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=SOL // 2)
    await open_position(env, trader, market, collateral=SOL // 2, size_usd=100 * USD)
    await set_prices(env, SOL=120_00)
    totals_before = (await env.custody("SOL")).longs

    half = await close_and_receive(env, trader, market, "SOL", close_bps=5_000)
    # Half the position: $25 collateral + $10 profit = $35 of SOL at $120.
    assert half == 35 * SOL * 100 // 120_00
    pos = await position(env, market, trader.key)
    # Half of the 0.5 SOL collateral and half of the 0.5 SOL locked for the $50 borrowed.
    assert (pos.size_usd, pos.collateral_usd, pos.collateral_amount, pos.locked_amount) == (
        50 * USD,
        25 * USD,
        SOL // 4,
        SOL // 4,
    )
    assert pos.unpaid_borrow_fee_usd == 0
    assert pos.price == ENTRY_9DP
    totals = (await env.custody("SOL")).longs
    assert totals.open_positions == totals_before.open_positions
    assert totals.size_usd == totals_before.size_usd - 50 * USD
    assert totals.collateral_usd == totals_before.collateral_usd - 25 * USD
    await assert_conserved(env)

    # The remaining half is an ordinary position: its pnl and close match a $50 / $25 one.
    pnl = await views.pnl(env.client, market, trader.key)
    assert (pnl.profit_usd, pnl.loss_usd) == (10 * USD, 0)
    rest = await close_and_receive(env, trader, market, "SOL")
    assert rest == 35 * SOL * 100 // 120_00
    # Two halves never pay more than one full close would have (floor(70/120 SOL)).
    assert half + rest <= 70 * SOL * 100 // 120_00
    assert not await account_exists(env, position_key(env, market, trader.key))
    await assert_conserved(env)


async def test_partial_close_rounds_released_amounts_down(main: PoolEnv) -> None:
    env = main
    market = short_market(env)
    collateral = 33_333_333  # 33.333333 USDC
    size = 99_999_999
    trader = await new_trader(env, USDC=collateral)
    await open_position(env, trader, market, collateral=collateral, size_usd=size)
    before = await position(env, market, trader.key)
    assert before.locked_amount == size  # USDC at $1: one token unit per USD unit

    received = await close_and_receive(env, trader, market, "USDC", close_bps=3_333)
    closed_size = size * 3_333 // BPS
    closed_collateral = collateral * 3_333 // BPS
    after = await position(env, market, trader.key)
    assert after.size_usd == size - closed_size
    assert after.collateral_usd == collateral - closed_collateral
    assert after.collateral_amount == collateral - closed_collateral
    assert after.locked_amount == size - size * 3_333 // BPS
    assert received == closed_collateral  # constant price, no fees: the collateral slice
    await close_and_receive(env, trader, market, "USDC")
    await assert_conserved(env)


async def test_close_bps_out_of_range_rejected(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=SOL)
    await open_position(env, trader, market, collateral=SOL, size_usd=200 * USD)
    for bps in (0, BPS + 1):
        ix = close_position_ix(
            env.client, trader.key, market, receiving_account=trader.accounts["SOL"], close_bps=bps
        )
        await rejected(
            env, [ix], [trader.wallet], "InvalidCloseSize", watch=[trader.accounts["SOL"]]
        )
    await close_position(env, trader, market)

    # A one-unit position ($0.000001 on 10 lamports): half of it rounds to nothing.
    dust = await new_trader(env, SOL=10)
    await open_position(env, dust, market, collateral=10, size_usd=1)
    ix = close_position_ix(
        env.client, dust.key, market, receiving_account=dust.accounts["SOL"], close_bps=5_000
    )
    await rejected(env, [ix], [dust.wallet], "InvalidCloseSize", watch=[dust.accounts["SOL"]])
    await close_position(env, dust, market)
    assert await env.balance(dust.accounts["SOL"]) == 10
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Price-limit guard
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["long", "short"])
async def test_price_limit_on_open_and_close(main: PoolEnv, side: str) -> None:
    env = main
    if side == "long":
        # A long's limit is a ceiling on the entry price and a floor on the exit price.
        market, symbol, collateral = long_market(env), "SOL", SOL
        worse_open, worse_close = ENTRY_9DP - 1, ENTRY_9DP + 1
    else:
        market, symbol, collateral = short_market(env), "USDC", 100 * USDC
        worse_open, worse_close = ENTRY_9DP + 1, ENTRY_9DP - 1
    trader = await new_trader(env, **{symbol: collateral})
    watch = [trader.accounts[symbol], trader.key]

    ix = open_position_ix(
        env.client,
        trader.key,
        market,
        collateral_amount=collateral,
        size_usd=300 * USD,
        funding_account=trader.accounts[symbol],
        price_limit=worse_open,
    )
    await rejected(env, [ix], [trader.wallet], "PriceLimitExceeded", watch=watch)
    # Exactly at the limit is accepted.
    await open_position(
        env, trader, market, collateral=collateral, size_usd=300 * USD, price_limit=ENTRY_9DP
    )

    ix = close_position_ix(
        env.client,
        trader.key,
        market,
        receiving_account=trader.accounts[symbol],
        price_limit=worse_close,
    )
    await rejected(env, [ix], [trader.wallet], "PriceLimitExceeded", watch=watch)
    ix = close_position_ix(
        env.client,
        trader.key,
        market,
        receiving_account=trader.accounts[symbol],
        price_limit=worse_close,
        close_bps=5_000,
    )
    await rejected(env, [ix], [trader.wallet], "PriceLimitExceeded", watch=watch)
    received = await close_and_receive(env, trader, market, symbol, price_limit=ENTRY_9DP)
    assert received == collateral
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Collateral changes
# --------------------------------------------------------------------------------------------


async def test_add_collateral(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=3 * SOL // 2)
    await open_position(env, trader, market, collateral=SOL, size_usd=1_000 * USD)
    custody_before = await env.custody("SOL")
    vault_before = await env.balance(
        env.client.custody_keys(env.pool, env.mint("SOL")).token_account
    )

    sig = await trade.add_collateral(
        env.client, trader.wallet, market, SOL // 2, funding_account=trader.accounts["SOL"]
    )
    pos = await position(env, market, trader.key)
    assert (pos.collateral_amount, pos.collateral_usd) == (3 * SOL // 2, 150 * USD)
    assert await env.balance(trader.accounts["SOL"]) == 0
    custody = await env.custody("SOL")
    assert custody.assets.collateral == custody_before.assets.collateral + SOL // 2
    assert custody.longs.collateral_usd == custody_before.longs.collateral_usd + 50 * USD
    assert custody.assets.owned == custody_before.assets.owned
    vault = await env.balance(env.client.custody_keys(env.pool, env.mint("SOL")).token_account)
    assert vault == vault_before + SOL // 2
    (changed,) = [e for e in await events(env, sig) if e.name == "CollateralChanged"]
    assert (changed.data.amount, changed.data.collateral_usd_delta, changed.data.added) == (
        SOL // 2,
        50 * USD,
        True,
    )
    await assert_conserved(env)

    # Adding collateral lowers the leverage the liquidation price is computed from.
    liq = await views.liquidation_price(env.client, market, trader.key)
    # long: entry * (size + 0.4% of size - collateral) / size, rounded up
    assert liq == ceil_div(ENTRY_9DP * (1_000 * USD + 4 * USD - 150 * USD), 1_000 * USD)
    await close_position(env, trader, market)
    await assert_conserved(env)


async def test_add_collateral_cannot_go_below_min_initial_leverage(main: PoolEnv) -> None:
    """A long's SOL collateral is accounted in USD at the price it came in. Below 1x the pool
    would hold the excess as a USD claim that no locked tokens back (before the fix: 1 SOL at
    1x plus 9 SOL added, i.e. 0.1x, SOL -90%, and the close paid 91 SOL for the 10 deposited,
    out of the LPs' tokens). At exactly 1x the pool is neutral; adding beyond the minimum
    initial leverage (1x here) is LeverageTooLow."""
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=11 * SOL)
    await open_position(env, trader, market, collateral=SOL, size_usd=200 * USD)  # 2x
    watch = [trader.accounts["SOL"], trader.key]

    ix = add_collateral_ix(
        env.client, trader.key, market, 9 * SOL, funding_account=trader.accounts["SOL"]
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooLow", watch=watch)
    await trade.add_collateral(
        env.client, trader.wallet, market, SOL, funding_account=trader.accounts["SOL"]
    )
    pos = await position(env, market, trader.key)
    assert (pos.size_usd, pos.collateral_usd, pos.collateral_amount) == (
        200 * USD,
        200 * USD,
        2 * SOL,
    )  # 1x
    # 10 lamports are one USD unit at $100: the smallest addition that counts.
    ix = add_collateral_ix(
        env.client, trader.key, market, 10, funding_account=trader.accounts["SOL"]
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooLow", watch=watch)

    await set_prices(env, SOL=10_00)  # -90%
    owned_before = (await env.custody("SOL")).assets.owned
    received = await close_and_receive(env, trader, market, "SOL")
    # $200 - $180 of loss = $20 = 2 SOL at $10: exactly the tokens deposited, the pool neutral.
    assert received == 2 * SOL
    assert (await env.custody("SOL")).assets.owned == owned_before
    await assert_conserved(env)


async def test_remove_collateral_bounded_by_max_initial_leverage(main: PoolEnv) -> None:
    env = main  # max initial leverage 100x (default config)
    market = long_market(env)
    trader = await new_trader(env, SOL=SOL)
    await open_position(env, trader, market, collateral=SOL, size_usd=1_000 * USD)  # $100: 10x
    watch = [trader.accounts["SOL"], trader.key]

    # 100x of $1000 needs $10 of margin: removing $90 + 1 unit breaches it.
    ix = remove_collateral_ix(
        env.client, trader.key, market, 90 * USD + 1, receiving_account=trader.accounts["SOL"]
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooHigh", watch=watch)
    sig = await trade.remove_collateral(
        env.client, trader.wallet, market, 90 * USD, receiving_account=trader.accounts["SOL"]
    )
    # $90 of SOL at $100, rounded down.
    assert (
        await env.balance(trader.accounts["SOL"])
        == tokens_floor(90 * USD, 9, SOL_PRICE, SOL_EXPO)
        == 9 * SOL // 10
    )
    pos = await position(env, market, trader.key)
    assert (pos.collateral_usd, pos.collateral_amount) == (10 * USD, SOL // 10)
    (changed,) = [e for e in await events(env, sig) if e.name == "CollateralChanged"]
    assert (changed.data.amount, changed.data.added, changed.data.collateral_usd) == (
        9 * SOL // 10,
        False,
        10 * USD,
    )
    await assert_conserved(env)
    # At exactly 100x now: any further removal is over the limit.
    ix = remove_collateral_ix(
        env.client, trader.key, market, 1, receiving_account=trader.accounts["SOL"]
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooHigh", watch=watch)
    await close_position(env, trader, market)
    await assert_conserved(env)


async def test_remove_collateral_counts_unrealized_loss(main: PoolEnv) -> None:
    env = main
    market = short_market(env)
    trader = await new_trader(env, USDC=100 * USDC)
    await open_position(env, trader, market, collateral=100 * USDC, size_usd=1_000 * USD)
    await set_prices(env, SOL=101_00)  # +1%: the short loses $10
    watch = [trader.accounts["USDC"], trader.key]

    # Margin after removal = remaining - $10 loss must stay >= $10 (100x): at most $80 out.
    ix = remove_collateral_ix(
        env.client, trader.key, market, 80 * USD + 1, receiving_account=trader.accounts["USDC"]
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooHigh", watch=watch)
    await trade.remove_collateral(
        env.client, trader.wallet, market, 80 * USD, receiving_account=trader.accounts["USDC"]
    )
    assert await env.balance(trader.accounts["USDC"]) == 80 * USDC
    # The rest: $20 collateral - $10 loss.
    assert await close_and_receive(env, trader, market, "USDC") == 10 * USDC
    await assert_conserved(env)


async def test_remove_all_collateral_rejected(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=SOL)
    await open_position(env, trader, market, collateral=SOL, size_usd=100 * USD)
    ix = remove_collateral_ix(
        env.client, trader.key, market, 100 * USD, receiving_account=trader.accounts["SOL"]
    )
    await rejected(
        env, [ix], [trader.wallet], "InsufficientCollateral", watch=[trader.accounts["SOL"]]
    )
    ix = add_collateral_ix(
        env.client, trader.key, market, 0, funding_account=trader.accounts["SOL"]
    )
    await rejected(env, [ix], [trader.wallet], "ZeroAmount", watch=[trader.accounts["SOL"]])
    await close_position(env, trader, market)
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Leverage bounds
# --------------------------------------------------------------------------------------------


async def test_max_leverage_250x_opens_one_bp_over_rejected(env: PoolEnv) -> None:
    pool = await add_pool(env, "lev250")
    for symbol in ("SOL", "USDC"):
        await pool.configure(symbol, max_initial_leverage=250 * BPS, max_leverage=250 * BPS)
    await provide_liquidity(pool, "SOL", 10 * SOL)
    await provide_liquidity(pool, "USDC", 10_000 * USDC)
    at_limit = 250 * USD  # $1 of collateral * 250
    one_bp_over = 250 * USD + 100  # ceil(size * 10_000 / $1) = 2_500_001 bps

    for market, symbol, one_dollar in (
        (long_market(pool), "SOL", SOL // 100),
        (short_market(pool), "USDC", USDC),
    ):
        spec = pool.specs[symbol]
        assert usd_of(one_dollar, spec.decimals, spec.price, spec.expo) == USD
        quote = await views.entry_price_and_fee(pool.client, market, one_dollar, one_bp_over)
        assert quote.leverage_bps == 250 * BPS + 1
        rejected_trader = await new_trader(pool, **{symbol: one_dollar})
        ix = open_position_ix(
            pool.client,
            rejected_trader.key,
            market,
            collateral_amount=one_dollar,
            size_usd=one_bp_over,
            funding_account=rejected_trader.accounts[symbol],
        )
        await rejected(
            pool,
            [ix],
            [rejected_trader.wallet],
            "LeverageTooHigh",
            watch=[rejected_trader.accounts[symbol], rejected_trader.key],
        )
        assert not await account_exists(pool, position_key(pool, market, rejected_trader.key))

        trader = await new_trader(pool, **{symbol: one_dollar})
        quote = await views.entry_price_and_fee(pool.client, market, one_dollar, at_limit)
        assert quote.leverage_bps == 250 * BPS
        await open_position(pool, trader, market, collateral=one_dollar, size_usd=at_limit)
        pos = await position(pool, market, trader.key)
        assert (pos.size_usd, pos.collateral_usd) == (at_limit, USD)
        # Exactly at the maintenance margin (0.4% of $250 = $1): not liquidatable yet.
        assert await views.liquidation_state(pool.client, market, trader.key) is False
        await assert_conserved(pool)


async def test_min_initial_leverage(main: PoolEnv) -> None:
    env = main
    await env.configure("SOL", min_initial_leverage=2 * BPS)
    market = long_market(env)
    trader = await new_trader(env, SOL=SOL)
    ix = open_position_ix(
        env.client,
        trader.key,
        market,
        collateral_amount=SOL,
        size_usd=200 * USD - 1,
        funding_account=trader.accounts["SOL"],
    )
    await rejected(env, [ix], [trader.wallet], "LeverageTooLow", watch=[trader.accounts["SOL"]])
    await open_position(env, trader, market, collateral=SOL, size_usd=200 * USD)
    await close_position(env, trader, market)
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Side rules
# --------------------------------------------------------------------------------------------


async def test_wrong_collateral_for_side(main: PoolEnv) -> None:
    env = main
    trader = await new_trader(env, SOL=SOL, USDC=100 * USDC)
    watch = [trader.accounts["SOL"], trader.accounts["USDC"], trader.key]
    cases = [
        # A long's collateral must be the traded token.
        (
            Market(env.pool, env.mint("SOL"), env.mint("USDC"), "long"),
            "USDC",
            100 * USDC,
            "InvalidLongCollateral",
        ),
        # A short's collateral must be a stable custody ...
        (
            Market(env.pool, env.mint("SOL"), env.mint("SOL"), "short"),
            "SOL",
            SOL,
            "InvalidShortCollateral",
        ),
        # ... against a non-stable traded custody.
        (
            Market(env.pool, env.mint("USDC"), env.mint("USDC"), "short"),
            "USDC",
            100 * USDC,
            "InvalidShortCollateral",
        ),
        (
            Market(env.pool, env.mint("USDC"), env.mint("SOL"), "long"),
            "SOL",
            SOL,
            "InvalidLongCollateral",
        ),
    ]
    for market, symbol, collateral, error in cases:
        ix = open_position_ix(
            env.client,
            trader.key,
            market,
            collateral_amount=collateral,
            size_usd=100 * USD,
            funding_account=trader.accounts[symbol],
        )
        await rejected(env, [ix], [trader.wallet], error, watch=watch)
        await view_rejected(
            env, views.entry_price_and_fee(env.client, market, collateral, 100 * USD), error
        )
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# Utilization and open-interest caps
# --------------------------------------------------------------------------------------------


async def test_max_utilization(env: PoolEnv) -> None:
    pool = await add_pool(env, "util")
    await pool.configure("SOL", max_utilization_bps=5_000)
    await provide_liquidity(pool, "SOL", 10 * SOL)
    market = long_market(pool)

    first = await new_trader(pool, SOL=SOL)
    # $600 on $100 of collateral borrows $500: locks 5 of the 10 SOL, exactly the 50% allowed.
    await open_position(pool, first, market, collateral=SOL, size_usd=600 * USD)
    custody = await pool.custody("SOL")
    assert (custody.assets.locked, custody.assets.owned) == (5 * SOL, 10 * SOL)

    second = await new_trader(pool, SOL=SOL)
    # $2 on $1 of collateral would lock 0.01 SOL more: over the cap.
    ix = open_position_ix(
        pool.client,
        second.key,
        market,
        collateral_amount=SOL // 100,
        size_usd=2 * USD,
        funding_account=second.accounts["SOL"],
    )
    await rejected(
        pool,
        [ix],
        [second.wallet],
        "MaxUtilizationExceeded",
        watch=[second.accounts["SOL"], second.key],
    )
    await close_position(pool, first, market)
    await open_position(pool, second, market, collateral=SOL // 100, size_usd=2 * USD)
    await close_position(pool, second, market)
    await assert_conserved(pool)


async def test_open_interest_and_size_caps(env: PoolEnv) -> None:
    pool = await add_pool(env, "caps")
    await pool.configure(
        "SOL",
        max_position_size_usd=800 * USD,
        max_long_open_interest_usd=1_000 * USD,
        max_short_open_interest_usd=500 * USD,
    )
    await provide_liquidity(pool, "SOL", 100 * SOL)
    await provide_liquidity(pool, "USDC", 10_000 * USDC)
    longs, shorts = long_market(pool), short_market(pool)
    traders = [await new_trader(pool, SOL=10 * SOL, USDC=1_000 * USDC) for _ in range(4)]

    def opening(trader: Trader, market: Market, size: int) -> Instruction:
        """An open at 2x (1x for a one-unit size)."""
        symbol = "SOL" if market.side == "long" else "USDC"
        spec = pool.specs[symbol]
        collateral = max(1, tokens_ceil(size // 2, spec.decimals, spec.price, spec.expo))
        return open_position_ix(
            pool.client,
            trader.key,
            market,
            collateral_amount=collateral,
            size_usd=size,
            funding_account=trader.accounts[symbol],
        )

    watch = [a for t in traders for a in t.accounts.values()]
    await rejected(
        pool,
        [opening(traders[0], longs, 800 * USD + 1)],
        [traders[0].wallet],
        "PositionTooLarge",
        watch=watch,
    )
    await open_position(pool, traders[0], longs, collateral=5 * SOL, size_usd=800 * USD)
    await rejected(
        pool,
        [opening(traders[1], longs, 200 * USD + 1)],
        [traders[1].wallet],
        "OpenInterestCapExceeded",
        watch=watch,
    )
    # Exactly at the cap.
    await open_position(pool, traders[1], longs, collateral=SOL, size_usd=200 * USD)
    assert (await pool.custody("SOL")).longs.size_usd == 1_000 * USD

    await open_position(pool, traders[2], shorts, collateral=500 * USDC, size_usd=500 * USD)
    await rejected(
        pool,
        [opening(traders[3], shorts, 1)],
        [traders[3].wallet],
        "OpenInterestCapExceeded",
        watch=watch,
    )
    # Closing frees the cap.
    await close_position(pool, traders[2], shorts)
    await open_position(pool, traders[3], shorts, collateral=500 * USDC, size_usd=500 * USD)
    await assert_conserved(pool)
    for trader, market in ((traders[0], longs), (traders[1], longs), (traders[3], shorts)):
        await close_position(pool, trader, market)
    await assert_conserved(pool)


async def test_one_position_per_owner_side(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    trader = await new_trader(env, SOL=2 * SOL)
    await open_position(env, trader, market, collateral=SOL, size_usd=100 * USD)
    ix = open_position_ix(
        env.client,
        trader.key,
        market,
        collateral_amount=SOL,
        size_usd=100 * USD,
        funding_account=trader.accounts["SOL"],
    )
    before = await chain_state(env.client, [trader.accounts["SOL"], trader.key])
    failure = await send_failing(env.client, [ix], [trader.wallet])
    assert any("already in use" in line for line in failure.logs), failure.logs
    assert await chain_state(env.client, [trader.accounts["SOL"], trader.key]) == before
    await close_position(env, trader, market)
    await assert_conserved(env)


# --------------------------------------------------------------------------------------------
# The Python quotes (perpool.quotes) equal the program's own view instructions
# --------------------------------------------------------------------------------------------


async def stable_clock(env: PoolEnv, read: Callable[[], Awaitable[T]]) -> tuple[int, T]:
    """Runs ``read`` (views simulated at the confirmed bank) and returns it with the confirmed
    Clock it ran at; repeated if a new second began meanwhile."""
    for _ in range(5):
        before = await confirmed_clock(env)
        result = await read()
        if await confirmed_clock(env) == before:
            return before, result
    pytest.fail("the confirmed clock kept moving")


QuoteInputs = tuple[q.CustodyState, q.Prices, q.CustodyState, q.Prices]


async def custody_and_prices(
    env: PoolEnv, mint: Pubkey, now: int
) -> tuple[q.CustodyState, q.Prices]:
    keys = env.client.custody_keys(env.pool, mint)
    custody = q.CustodyState.from_account(
        await env.client.fetch("Custody", keys.custody), key=keys.custody
    )
    oracle = q.CustomOracleState.from_account(await env.client.fetch("CustomOracle", keys.oracle))
    return custody, q.read_custom_oracle(oracle, custody.oracle, now)


async def quote_inputs(env: PoolEnv, market: Market, now: int) -> QuoteInputs:
    """(custody, prices, collateral custody, collateral prices) as perpool.quotes takes them."""
    custody, prices = await custody_and_prices(env, market.mint, now)
    collateral_custody, collateral_prices = await custody_and_prices(
        env, market.collateral_mint, now
    )
    return custody, prices, collateral_custody, collateral_prices


async def test_python_quotes_equal_program_views(env: PoolEnv) -> None:
    pool = await add_pool(env, "quotes")
    fees = {
        "open_position_bps": 10,
        "close_position_bps": 15,
        "liquidation_reward_bps": 10,
        "protocol_share_bps": 2_500,
    }
    await pool.configure("SOL", hourly_rate=100_000, max_price_age_sec=86_400, **fees)
    await pool.configure("USDC", hourly_rate=200_000, max_price_age_sec=86_400, **fees)
    await provide_liquidity(pool, "SOL", 100 * SOL)
    await provide_liquidity(pool, "USDC", 20_000 * USDC)
    longs, shorts = long_market(pool), short_market(pool)
    book = [
        (longs, "SOL", 3 * SOL // 2, 300 * USD),  # 2x
        (longs, "SOL", SOL // 2, 4_000 * USD),  # 80x
        (shorts, "USDC", 200 * USDC, 2_000 * USD),  # 10x
        (shorts, "USDC", 100 * USDC, 9_000 * USD),  # 90x
    ]
    owners = []
    for market, symbol, collateral, size in book:
        owner = await new_trader(pool, **{symbol: collateral})

        async def entry_quote(m: Market = market, c: int = collateral, s: int = size) -> Any:
            return await views.entry_price_and_fee(pool.client, m, c, s)

        now, view = await stable_clock(pool, entry_quote)
        inputs = await quote_inputs(pool, market, now)
        side = Side.LONG if market.side == "long" else Side.SHORT
        assert q.OpenQuote.from_decoded(view) == q.get_entry_price_and_fee(
            side, *inputs, collateral, size
        )
        await open_position(pool, owner, market, collateral=collateral, size_usd=size)
        pos = await position(pool, market, owner.key)
        assert (pos.price, pos.collateral_usd, pos.locked_amount) == (
            view.entry_price,
            view.collateral_usd,
            view.locked_amount,
        )
        owners.append(owner)
    await pool.advance(2 * 3_600)  # borrow fees accrue in both custodies

    # (SOL spot, SOL EMA) with exponent -8, and (USDC spot, EMA) with exponent -6.
    states = [
        ((100_00000000, 100_00000000), (1_000_000, 1_000_000)),
        ((103_37000000, 102_90000000), (1_000_000, 999_800)),
        ((98_88000000, 99_50000000), (999_900, 1_000_000)),
        ((101_23456789, 100_00000001), (1_000_000, 1_000_000)),
    ]
    liquidatable_seen = 0
    for (sol, sol_ema), (usdc, usdc_ema) in states:
        await post_price(pool, "SOL", sol, expo=-8, ema=sol_ema)
        await post_price(pool, "USDC", usdc, ema=usdc_ema)
        for (market, _symbol, _collateral, _size), owner in zip(book, owners, strict=True):

            async def read(m: Market = market, o: Pubkey = owner.key) -> tuple[Any, ...]:
                return (
                    await views.pnl(pool.client, m, o),
                    await views.exit_price_and_fee(pool.client, m, o),
                    await views.exit_price_and_fee(pool.client, m, o, 5_000),
                    await views.liquidation_state(pool.client, m, o),
                    await views.liquidation_price(pool.client, m, o),
                )

            now, (pnl, full, half, liquidatable, liquidation_price) = await stable_clock(pool, read)
            pos = q.PositionState.from_account(await position(pool, market, owner.key))
            inputs = await quote_inputs(pool, market, now)
            assert q.PositionPnl.from_decoded(pnl) == q.get_pnl(pos, *inputs, now)
            assert q.CloseQuote.from_decoded(full) == q.get_exit_price_and_fee(
                pos, *inputs, now, BPS
            )
            assert q.CloseQuote.from_decoded(half) == q.get_exit_price_and_fee(
                pos, *inputs, now, 5_000
            )
            assert liquidatable == q.get_liquidation_state(pos, *inputs, now)
            assert liquidation_price == q.get_liquidation_price(pos, *inputs, now)
            assert pnl.borrow_fee_usd > 0
            liquidatable_seen += liquidatable
    assert 0 < liquidatable_seen < len(states) * len(book)

    # And what a liquidation pays equals the Python split, at the block's time.
    liquidator = await new_trader(pool)
    await post_price(pool, "SOL", 98_88000000, expo=-8, ema=99_50000000)
    market, owner = longs, owners[1]
    assert await views.liquidation_state(pool.client, market, owner.key) is True
    pos = q.PositionState.from_account(await position(pool, market, owner.key))
    custody_key = pool.client.custody_keys(pool.pool, pool.mint("SOL")).custody
    custody_before = await pool.client.fetch("Custody", custody_key)
    aum = (await pool.client.fetch("Pool", pda.pool(pool.pool))).aum_usd
    oracle = q.CustomOracleState.from_account(
        await pool.client.fetch(
            "CustomOracle", pool.client.custody_keys(pool.pool, pool.mint("SOL")).oracle
        )
    )
    signature = await trade.liquidate(
        pool.client,
        liquidator.wallet,
        market,
        owner.key,
        receiving_account=liquidator.accounts["SOL"],
        owner_receiving_account=owner.accounts["SOL"],
    )
    at = await block_time(pool, signature)
    custody = q.CustodyState.from_account(custody_before, key=custody_key)
    prices = q.read_custom_oracle(oracle, custody.oracle, at)
    split = q.liquidate(pos, custody, prices, custody, prices, at, aum).amounts
    (event,) = [e.data for e in await events(pool, signature) if e.name == "PositionLiquidated"]
    assert (event.reward_amount, event.owner_amount) == (split.reward_amount, split.owner_amount)
    assert await pool.balance(liquidator.accounts["SOL"]) == split.reward_amount
    await assert_conserved(pool)


# --------------------------------------------------------------------------------------------
# Ownership: nobody but the owner closes or changes a position
# --------------------------------------------------------------------------------------------


async def test_only_the_owner_can_close_or_change_a_position(main: PoolEnv) -> None:
    env = main
    market = long_market(env)
    victim = await new_trader(env, SOL=SOL)
    attacker = await new_trader(env, SOL=SOL)
    await open_position(env, victim, market, collateral=SOL, size_usd=200 * USD)
    victim_position = position_key(env, market, victim.key)
    watch = [victim.accounts["SOL"], attacker.accounts["SOL"], victim.key, attacker.key]
    accounts = trade.market_accounts(env.client, market)

    close = env.client.ix(
        "close_position",
        {"price": 0, "close_bps": BPS},
        accounts=accounts
        | {
            "owner": attacker.key,
            "receiving_account": attacker.accounts["SOL"],
            "position": victim_position,
        },
    )
    remove = env.client.ix(
        "remove_collateral",
        10 * USD,
        accounts=accounts
        | {
            "owner": attacker.key,
            "receiving_account": attacker.accounts["SOL"],
            "position": victim_position,
        },
    )
    for ix in (close, remove):
        await rejected(env, [ix], [attacker.wallet], "ConstraintSeeds", watch=watch)

    # Naming the victim as owner without the victim's signature.
    victim_ixs = [
        close_position_ix(
            env.client, victim.key, market, receiving_account=attacker.accounts["SOL"]
        ),
        remove_collateral_ix(
            env.client, victim.key, market, 10 * USD, receiving_account=attacker.accounts["SOL"]
        ),
        add_collateral_ix(
            env.client, victim.key, market, SOL // 10, funding_account=victim.accounts["SOL"]
        ),
    ]
    for ix in victim_ixs:
        await rejected(env, [without_signer(ix, victim.key)], [], "AccountNotSigner", watch=watch)
    newcomer = await new_trader(env, SOL=SOL)
    ix = open_position_ix(
        env.client,
        newcomer.key,
        market,
        collateral_amount=SOL,
        size_usd=200 * USD,
        funding_account=newcomer.accounts["SOL"],
    )
    await rejected(
        env,
        [without_signer(ix, newcomer.key)],
        [],
        "AccountNotSigner",
        watch=[newcomer.accounts["SOL"]],
    )

    # The victim's position is untouched and still closes normally.
    assert (await position(env, market, victim.key)).collateral_amount == SOL
    assert await close_and_receive(env, victim, market, "SOL") == SOL
    await assert_conserved(env)
