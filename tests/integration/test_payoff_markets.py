"""Payoff markets (k*P, P^2, sqrt P) against a real localnet.

A synthetic custody trades ``payoff(P)`` of its oracle's price, holds no tokens and takes
stable collateral on both sides; positions are sized in payoff units (size = units * payoff
price) and lock ``max_profit_bps`` of their size in the stable custody, the most the pool can
ever pay them. Expectations are computed here from the formulas, in integers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, TokenSpec, build_pool_env
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from trade_support import (
    BPS,
    PRICE_9DP,
    RATE_ONE,
    USD,
    USDC,
    assert_conserved,
    close_position,
    events,
    new_trader,
    open_position,
    position,
    provide_liquidity,
    rejected,
)

from perpool import lp, trade, views
from perpool.custody_config import custody_config
from perpool.localnet import LocalnetProcess
from perpool.trade import LONG, SHORT, Market, open_position_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

E8 = 10**8
ETH_1000 = 1_000 * E8
TOKENS = (
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("ETH1X", 8, False, ETH_1000, -8),  # k = 1: $1000 per unit at ETH $1000
    TokenSpec("ETHSQ", 8, False, ETH_1000, -8),  # k = 0.001: $1000 per unit at ETH $1000
    TokenSpec("ETHRT", 8, False, 10_000 * E8, -8),  # k = 10: $1000 per unit at ETH $10,000
)
AGE = {"max_price_age_sec": 3_600}
PAYOFFS: dict[str, dict[str, Any]] = {
    "ETH1X": {"payoff": "linear", "payoff_scale": RATE_ONE, "max_profit_bps": BPS},
    "ETHSQ": {"payoff": "square", "payoff_scale": RATE_ONE // 1_000, "max_profit_bps": BPS},
    "ETHRT": {"payoff": "sqrt", "payoff_scale": 10 * RATE_ONE, "max_profit_bps": BPS},
}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    configs = {"USDC": AGE} | {symbol: AGE | payoff for symbol, payoff in PAYOFFS.items()}
    pool_env = await build_pool_env(net.url, net.faucet(), TOKENS, configs)
    await provide_liquidity(pool_env, "USDC", 100_000 * USDC)
    yield pool_env
    await pool_env.client.close()


def market(env: PoolEnv, symbol: str, side: str) -> Market:
    return Market.payoff(env.pool, env.mint(symbol), env.mint("USDC"), side)


async def post(env: PoolEnv, symbol: str, price: int) -> None:
    """Posts ``symbol``'s oracle price and re-posts USDC so neither is stale."""
    await env.set_price(symbol, price)
    await env.set_price("USDC", 1_000_000)


async def trade_round(
    env: PoolEnv, symbol: str, side: str, units_x10: int, collateral: int, exit_price: int
) -> tuple[Any, int]:
    """Opens ``units_x10 / 10`` units at $1000 per unit, moves the oracle to ``exit_price`` and
    closes; returns the position as opened and the USDC paid out."""
    trader = await new_trader(env, USDC=collateral)
    m = market(env, symbol, side)
    await open_position(env, trader, m, collateral=collateral, size_usd=units_x10 * 100 * USD)
    opened = await position(env, m, trader.key)
    await post(env, symbol, exit_price)
    before = await env.balance(trader.accounts["USDC"])
    await close_position(env, trader, m)
    paid = await env.balance(trader.accounts["USDC"]) - before
    await post(env, symbol, TOKENS_BY_SYMBOL[symbol].price)
    return opened, paid


TOKENS_BY_SYMBOL = {t.symbol: t for t in TOKENS}


async def test_two_and_a_half_units_of_one_eth_track_2500_dollars(env: PoolEnv) -> None:
    # 2.5 units of 1*ETH at $1000 = $2500; ETH +10% → +$250 on $500 of collateral.
    opened, paid = await trade_round(env, "ETH1X", LONG, 25, 500 * USDC, 1_100 * E8)
    assert opened.price == 1_000 * PRICE_9DP
    assert opened.size_usd == 2_500 * USD
    assert opened.locked_amount == 2_500 * USDC  # max profit = 100% of size, in the stable
    assert paid == 750 * USDC
    # A short of 1 unit loses the same 10%: $200 - $100.
    _, paid = await trade_round(env, "ETH1X", SHORT, 10, 200 * USDC, 1_100 * E8)
    assert paid == 100 * USDC
    await assert_conserved(env)


async def test_square_payoff_moves_with_p_squared(env: PoolEnv) -> None:
    # 0.001 * 1100^2 = 1210: +21% on $2500 = $525.
    opened, paid = await trade_round(env, "ETHSQ", LONG, 25, 500 * USDC, 1_100 * E8)
    assert opened.price == 1_000 * PRICE_9DP
    assert paid == 500 * USDC + 525 * USD
    await assert_conserved(env)


async def test_sqrt_payoff_moves_with_the_root(env: PoolEnv) -> None:
    # 10 * sqrt(12100) = 1100: ETH +21% is +10% on $2500 = $250.
    opened, paid = await trade_round(env, "ETHRT", LONG, 25, 500 * USDC, 12_100 * E8)
    assert opened.price == 1_000 * PRICE_9DP
    assert paid == 750 * USDC
    await assert_conserved(env)


async def test_aum_values_open_positions_at_the_payoff_price(env: PoolEnv) -> None:
    trader = await new_trader(env, USDC=500 * USDC)
    m = market(env, "ETHSQ", LONG)
    await open_position(env, trader, m, collateral=500 * USDC, size_usd=2_500 * USD)
    before = await views.assets_under_management(env.client, env.pool)
    await post(env, "ETHSQ", 1_100 * E8)
    after = await views.assets_under_management(env.client, env.pool)
    # The book is worth size / entry * payoff(P) = 2.5 units * $1210: the traders' $525
    # profit comes out of the pool's value.
    units_9dp = 2_500 * USD * RATE_ONE // (1_000 * PRICE_9DP)
    profit = units_9dp * 1_210 * PRICE_9DP // RATE_ONE - 2_500 * USD
    assert profit == 525 * USD
    assert after.spot_usd == before.spot_usd - profit
    await close_position(env, trader, m)
    await post(env, "ETHSQ", ETH_1000)


async def test_a_large_p_squared_move_stays_solvent(env: PoolEnv) -> None:
    usdc_before = (await env.custody("USDC")).assets
    trader = await new_trader(env, USDC=500 * USDC)
    m = market(env, "ETHSQ", LONG)
    await open_position(env, trader, m, collateral=500 * USDC, size_usd=2_500 * USD)
    # ETH doubles: P^2 quadruples, an uncapped profit of 3 * $2500 = $7500. The pool pays at
    # most collateral + locked = $500 + $2500.
    await post(env, "ETHSQ", 2_000 * E8)
    before = await env.balance(trader.accounts["USDC"])
    signature = await close_position(env, trader, m)
    assert await env.balance(trader.accounts["USDC"]) - before == 3_000 * USDC
    [closed] = [e.data for e in await events(env, signature) if e.name == "PositionClosed"]
    assert closed.profit_usd == 7_500 * USD
    after = (await env.custody("USDC")).assets
    # The LPs lose exactly the locked $2500, no more; locked and collateral are released.
    assert after.owned == usdc_before.owned - 2_500 * USDC
    assert (after.locked, after.collateral) == (usdc_before.locked, usdc_before.collateral)
    assert 0 <= after.locked <= after.owned
    aum = await views.assets_under_management(env.client, env.pool)
    assert aum.spot_usd > 0
    assert aum.lp_price_usd > 0
    await assert_conserved(env)
    await post(env, "ETHSQ", ETH_1000)


async def test_payoff_positions_are_liquidated_on_the_payoff_value(env: PoolEnv) -> None:
    trader = await new_trader(env, USDC=500 * USDC)
    keeper = await new_trader(env)
    m = market(env, "ETHSQ", LONG)
    await open_position(env, trader, m, collateral=500 * USDC, size_usd=2_500 * USD)
    # At ETH $900 the payoff is 810: loss $475, margin $25 >= $10 (0.4% of $2500).
    await post(env, "ETHSQ", 900 * E8)
    assert await views.liquidation_state(env.client, m, trader.key) is False
    # At ETH $895 it is 801.025: loss $497.4375, margin $2.5625 < $10.
    await post(env, "ETHSQ", 895 * E8)
    assert await views.liquidation_state(env.client, m, trader.key) is True
    before = await env.balance(trader.accounts["USDC"])
    signature = await trade.liquidate(
        env.client,
        keeper.wallet,
        m,
        trader.key,
        receiving_account=keeper.accounts["USDC"],
        owner_receiving_account=trader.accounts["USDC"],
    )
    [event] = [e.data for e in await events(env, signature) if e.name == "PositionLiquidated"]
    assert event.exit_price == 801_025_000_000
    assert event.loss_usd == 497_437_500
    assert event.owner_amount == 2_562_500
    assert await env.balance(trader.accounts["USDC"]) - before == 2_562_500
    await assert_conserved(env)
    await post(env, "ETHSQ", ETH_1000)


async def test_synthetic_custodies_hold_no_tokens(env: PoolEnv) -> None:
    client = env.client
    trader = await new_trader(env, USDC=1_000 * USDC, ETHSQ=10 * E8)
    lp_account = await env.lp_account(trader.key)
    deposit = await lp.add_liquidity_ix(
        client,
        trader.key,
        env.pool,
        env.mint("ETHSQ"),
        E8,
        funding_account=trader.accounts["ETHSQ"],
        lp_token_account=lp_account,
    )
    await rejected(env, [deposit], [trader.wallet], "SyntheticCustody")
    swap = trade.swap_ix(
        client,
        trader.key,
        env.pool,
        env.mint("USDC"),
        env.mint("ETHSQ"),
        100 * USDC,
        funding_account=trader.accounts["USDC"],
        receiving_account=trader.accounts["ETHSQ"],
    )
    await rejected(env, [swap], [trader.wallet], "SyntheticCustody")
    # A long posting the synthetic itself as collateral is refused.
    own = Market.long(env.pool, env.mint("ETHSQ"))
    ix = open_position_ix(
        client,
        trader.key,
        own,
        collateral_amount=E8,
        size_usd=1_000 * USD,
        funding_account=trader.accounts["ETHSQ"],
    )
    await rejected(env, [ix], [trader.wallet], "InvalidPayoffCollateral")


async def test_the_payoff_is_fixed_at_creation(env: PoolEnv) -> None:
    client = env.client
    mint = env.mint("ETHSQ")
    for change in (
        {"payoff": "spot", "payoff_scale": 0, "max_profit_bps": 0},
        PAYOFFS["ETHSQ"] | {"payoff_scale": RATE_ONE},
    ):
        config = env.config("ETHSQ", **(AGE | change))
        ix = client.set_custody_config_ix(env.pool, mint, config, env.admin.pubkey())
        await rejected(env, [ix], [env.admin], "InvalidPayoffConfig")
    # The same payoff with other parameters is accepted.
    await env.configure("ETHSQ", **(AGE | PAYOFFS["ETHSQ"] | {"open_position_bps": 5}))
    assert (await env.custody("ETHSQ")).fees.open_position_bps == 5
    await env.configure("ETHSQ", **(AGE | PAYOFFS["ETHSQ"]))


async def test_a_payoff_market_needs_a_non_stable_synthetic_custody(env: PoolEnv) -> None:
    client = env.client
    mint = await AsyncToken.create_mint(
        client.connection, env.admin, env.admin.pubkey(), 6, TOKEN_PROGRAM_ID
    )
    oracle = client.custody_keys(env.pool, mint.pubkey).oracle
    config = custody_config(oracle, client_types=client.program.type, **PAYOFFS["ETHSQ"])
    ix = client.add_custody_ix(env.pool, mint.pubkey, True, config, env.admin.pubkey())
    await rejected(env, [ix], [env.admin], "InvalidPayoffConfig")
