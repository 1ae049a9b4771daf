"""The client's Python quotes (``perpool.quotes``) equal the program's own view instructions for
LP deposits and withdrawals, swaps, AUM, the LP token price and oracle prices, with fees on,
spot ≠ EMA and open positions in the book. (Position views are checked in test_trading.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, build_pool_env
from solders.pubkey import Pubkey

from perpool import math as m
from perpool import pda, views
from perpool import quotes as q
from perpool.client import ViewError
from perpool.localnet import LocalnetProcess, read_keypair
from perpool.program import error_names, load_idl
from perpool.trade import Market, open_position

pytestmark = pytest.mark.asyncio(loop_scope="module")

ERROR_NAMES = error_names(load_idl())

FEES = {
    "add_liquidity_bps": 30,
    "remove_liquidity_bps": 20,
    "swap_bps": 25,
    "open_position_bps": 10,
    "close_position_bps": 10,
    "protocol_share_bps": 2_000,
    "hourly_rate": 100_000,
    "max_price_error_bps": 500,
}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    faucet = read_keypair(net.faucet_keypair_path)
    pool = await build_pool_env(net.url, faucet, configs={"SOL": FEES, "USDC": FEES})
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
    trader = await pool.new_wallet()
    sol = await pool.fund(trader.pubkey(), "SOL", 2 * 10**9)
    usdc = await pool.fund(trader.pubkey(), "USDC", 200 * 10**6)
    await open_position(
        pool.client,
        trader,
        Market.long(pool.pool, pool.mint("SOL")),
        collateral_amount=10**9,
        size_usd=300 * 10**6,
        price_limit=10**15,
        funding_account=sol,
    )
    short = Market.short(pool.pool, pool.mint("SOL"), pool.mint("USDC"))
    await open_position(
        pool.client,
        trader,
        short,
        collateral_amount=100 * 10**6,
        size_usd=400 * 10**6,
        price_limit=0,
        funding_account=usdc,
    )
    # Spot and EMA apart, with a confidence interval, so the high/low valuations differ.
    await pool.set_price("SOL", 103_37, ema=101_90, conf=25)
    yield pool
    await pool.client.close()


async def priced_custodies(env: PoolEnv) -> list[q.PricedCustody]:
    """Every custody of the pool, in pool order, with its oracle prices (as the views read them)."""
    client = env.client
    pool = await client.fetch("Pool", pda.pool(env.pool))
    entries = []
    for key in pool.custodies:
        custody = await client.fetch("Custody", key)
        oracle = await client.fetch("CustomOracle", custody.oracle.oracle_account)
        entries.append(
            q.PricedCustody(
                q.CustodyState.from_account(custody, key=key), q.Prices.from_custom_oracle(oracle)
            )
        )
    return entries


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
    [("SOL", 1_234_567_891), ("USDC", 999_999), ("USDC", 10_000 * 10**6)],
)
async def test_add_liquidity_quote_equals_view(env: PoolEnv, symbol: str, amount: int) -> None:
    view: Any = await views.add_liquidity_amount_and_fee(
        env.client, env.pool, env.mint(symbol), amount
    )
    expected = q.get_add_liquidity_amount_and_fee(
        await priced_custodies(env), custody_key(env, symbol), await lp_supply(env), amount
    )
    assert q.AddLiquidityQuote.from_decoded(view) == expected
    assert expected.fee_amount == m.fee_tokens(amount, FEES["add_liquidity_bps"])


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
