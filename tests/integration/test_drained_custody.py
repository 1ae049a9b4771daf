"""A profitable position stays closable when its collateral custody has no unlocked tokens
left: the tokens locked for it are what it is paid from.

A short's payout is capped at its collateral plus the tokens locked for it (its full size in
the stable). When the stable trades below the price the position was opened at and the traded
asset has collapsed, the payout reaches that cap. ``Custody::settle_close`` must then not take
the protocol's share of the close fee out of tokens locked for other positions: if it did,
``owned`` would drop below ``locked`` and the close would be rejected with
``InsufficientLiquidity``, so the trader could not take the profit, nor could anyone liquidate
a profitable position. The share yields instead (the LPs keep the fee).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, TokenSpec, build_pool_env
from trade_support import (
    USD,
    USDC,
    assert_conserved,
    close_position,
    new_trader,
    open_position,
    position,
    provide_liquidity,
    set_prices,
    short_market,
)

from perpool import lp, views
from perpool.client import ViewError
from perpool.localnet import LocalnetProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOL = 10**9
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * 10**8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
)
CONFIGS = {
    "SOL": {"max_price_age_sec": 3_600, "open_position_bps": 10, "close_position_bps": 10},
    "USDC": {"max_price_age_sec": 3_600, "protocol_share_bps": 5_000},
}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet(), TOKENS, CONFIGS)
    yield pool_env
    await pool_env.client.close()


async def largest_withdrawal(env: PoolEnv, lp_balance: int) -> int:
    """The most LP tokens the program's quote lets the LP withdraw in USDC."""

    async def accepted(amount: int) -> bool:
        try:
            await views.remove_liquidity_amount_and_fee(
                env.client, env.pool, env.mint("USDC"), amount
            )
        except ViewError:
            return False
        return True

    low, high = 0, lp_balance + 1
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if await accepted(mid) else (low, mid)
    return low


async def test_capped_short_closes_when_the_custody_is_drained(env: PoolEnv) -> None:
    await provide_liquidity(env, "SOL", 100 * SOL)
    provider = await provide_liquidity(env, "USDC", 10_000 * USDC)
    market = short_market(env)
    trader = await new_trader(env, USDC=1_000 * USDC)
    # 9x short: $9 open fee, 991 USDC of collateral, the full $9,000 size locked in USDC.
    await open_position(env, trader, market, collateral=1_000 * USDC, size_usd=9_000 * USD)
    held = await position(env, market, trader.key)
    assert (held.collateral_amount, held.locked_amount) == (991 * USDC, 9_000 * USDC)

    # The LP takes every unlocked USDC (the LP fee curve is off: nothing stays behind).
    lp_account = await env.lp_account(provider.key)
    lp_balance = await env.balance(lp_account)
    await lp.remove_liquidity(
        env.client,
        provider.wallet,
        env.pool,
        env.mint("USDC"),
        await largest_withdrawal(env, lp_balance),
        receiving_account=provider.accounts["USDC"],
        lp_token_account=lp_account,
    )
    usdc = (await env.custody("USDC")).assets
    assert usdc.owned - usdc.locked < 5 * USDC

    # SOL collapses to $5 while USDC trades at $0.90: the payout ($991 + $8,550 profit - $9 fee)
    # is worth more than 991 + 9,000 USDC, so it is capped at exactly those tokens.
    await set_prices(env, SOL=5 * 10**8, USDC=900_000)
    fees_before = (await env.custody("USDC")).assets.protocol_fees
    before = await env.balance(trader.accounts["USDC"])
    await close_position(env, trader, market)
    assert await env.balance(trader.accounts["USDC"]) == before + 9_991 * USDC
    usdc = (await env.custody("USDC")).assets
    assert usdc.locked <= usdc.owned
    # The protocol took no more than was left unlocked before the close.
    assert usdc.protocol_fees - fees_before < 5 * USDC
    await assert_conserved(env)
