"""Liquidation (auto-close) on a real localnet.

DESIGN §4: a position whose collateral - fees - unrealized loss falls below 0.4% of its size
(maintenance margin 1 / max leverage, 250x) may be closed by anyone; the caller gets the
configured reward (liquidation_reward_bps of size, out of what is left) and the rest goes to the
owner's token account; the position account is closed with its rent returned to the owner.

The boundary is found here with integer math, independently of the program: liquidatable iff
``margin < ceil(size * 40 / 10_000)`` with ``margin = collateral - loss - fees`` (loss rounded
up). SOL is priced with exponent -8 in these pools, so one price unit is $0.00000001.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from conftest import start_validator
from pool_env import PoolEnv, TokenSpec, build_pool_env
from solders.instruction import AccountMeta, Instruction
from solders.signature import Signature
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
    early_in_second,
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
    set_clock,
    set_prices,
    short_market,
    tokens_ceil,
    tokens_floor,
    wait_confirmed_clock,
)

from perpool import trade, views
from perpool.localnet import LocalnetProcess
from perpool.trade import Market, close_position_ix, liquidate_ix

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPO = -8
P100 = 100 * 10**8  # $100 with exponent -8
ENTRY_9DP = 100 * PRICE_9DP
MAINTENANCE_BPS = 40  # 0.4%: 1 / 250x
FINE_TOKENS = (
    TokenSpec("SOL", 9, False, P100, EXPO),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
)
FEES = {
    "open_position_bps": 10,
    "close_position_bps": 10,
    "liquidation_reward_bps": 10,
    "protocol_share_bps": 2_500,
}
HOUR = 3_600
DAY = 86_400
RATE_ONE = 1_000_000_000


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet(), FINE_TOKENS)
    yield pool_env
    await pool_env.client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(env: PoolEnv) -> PoolEnv:
    """The module's first pool, with FEES and liquidity, for tests that need no pool of their own
    (the program allows 32 pools)."""
    for symbol in env.specs:
        await env.configure(symbol, **FEES)
    await provide_liquidity(env, "SOL", 100 * SOL)
    await provide_liquidity(env, "USDC", 10_000 * USDC)
    return env


@pytest_asyncio.fixture(loop_scope="module")
async def fees_pool(shared: PoolEnv) -> PoolEnv:
    """``shared`` at SOL $100 / USDC $1 with fresh prices."""
    await set_prices(shared, SOL=P100, USDC=1_000_000)
    return shared


async def fine_pool(env: PoolEnv, name: str, **config: int) -> PoolEnv:
    pool = await add_pool(env, name, FINE_TOKENS)
    for symbol in pool.specs:
        await pool.configure(symbol, **config)
    await provide_liquidity(pool, "SOL", 100 * SOL)
    await provide_liquidity(pool, "USDC", 10_000 * USDC)
    return pool


def to_9dp(p8: int) -> int:
    return p8 * 10


def threshold(size: int) -> int:
    return ceil_div(size * MAINTENANCE_BPS, BPS)


def margin(side: str, size: int, collateral_usd: int, fees: int, exit_9dp: int) -> int:
    """collateral + profit - loss - fees, with the profit rounded down and the loss up."""
    move = exit_9dp - ENTRY_9DP if side == "long" else ENTRY_9DP - exit_9dp
    pnl = move * size // ENTRY_9DP if move >= 0 else -ceil_div(-move * size, ENTRY_9DP)
    return collateral_usd + pnl - fees


def flip(predicate: Callable[[int], bool], low: int, high: int) -> int:
    """The smallest x in (low, high] with ``predicate(x) == predicate(high)``, for a predicate
    that changes value exactly once on [low, high] (bisection)."""
    target = predicate(high)
    assert predicate(low) != target
    while high - low > 1:
        mid = (low + high) // 2
        if predicate(mid) == target:
            high = mid
        else:
            low = mid
    return high


@dataclass
class Liquidation:
    signature: Signature
    reward: int
    owner_amount: int
    rent: int
    owner_lamports: int


async def liquidate(
    env: PoolEnv, liquidator: Trader, market: Market, owner: Trader, symbol: str
) -> Liquidation:
    key = position_key(env, market, owner.key)
    rent = await lamports(env, key)
    owner_lamports = await lamports(env, owner.key)
    reward_before = await env.balance(liquidator.accounts[symbol])
    owner_before = await env.balance(owner.accounts[symbol])
    signature = await trade.liquidate(
        env.client,
        liquidator.wallet,
        market,
        owner.key,
        receiving_account=liquidator.accounts[symbol],
        owner_receiving_account=owner.accounts[symbol],
    )
    return Liquidation(
        signature,
        await env.balance(liquidator.accounts[symbol]) - reward_before,
        await env.balance(owner.accounts[symbol]) - owner_before,
        rent,
        await lamports(env, owner.key) - owner_lamports,
    )


async def close_and_receive(env: PoolEnv, trader: Trader, market: Market, symbol: str) -> int:
    before = await env.balance(trader.accounts[symbol])
    await close_position(env, trader, market)
    return await env.balance(trader.accounts[symbol]) - before


def liquidate_instruction(
    env: PoolEnv, liquidator: Trader, market: Market, owner: Trader, symbol: str
) -> Instruction:
    return liquidate_ix(
        env.client,
        liquidator.key,
        market,
        owner.key,
        receiving_account=liquidator.accounts[symbol],
        owner_receiving_account=owner.accounts[symbol],
    )


# --------------------------------------------------------------------------------------------
# The price boundary, to one price unit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["long", "short"])
async def test_liquidation_boundary_to_one_price_unit(env: PoolEnv, side: str) -> None:
    pool = await fine_pool(env, f"edge-{side}", **FEES)
    if side == "long":
        market, symbol, gross = long_market(pool), "SOL", SOL // 5  # $20 of SOL
    else:
        market, symbol, gross = short_market(pool), "USDC", 20 * USDC
    decimals, collateral_price, collateral_expo = (
        (9, P100, EXPO) if side == "long" else (6, 1_000_000, -6)
    )
    size = 1_000 * USD
    owner = await new_trader(pool, **{symbol: gross})
    liquidator = await new_trader(pool)
    await open_position(pool, owner, market, collateral=gross, size_usd=size)

    open_fee = ceil_div(size * FEES["open_position_bps"], BPS)  # $1
    close_fee = ceil_div(size * FEES["close_position_bps"], BPS)  # $1
    open_fee_tokens = tokens_ceil(open_fee, decimals, collateral_price, collateral_expo)
    collateral_usd = 20 * USD - open_fee
    pos = await position(pool, market, owner.key)
    assert (pos.price, pos.collateral_usd, pos.collateral_amount) == (
        ENTRY_9DP,
        collateral_usd,
        gross - open_fee_tokens,
    )

    def liquidatable(p8: int) -> bool:
        return margin(side, size, collateral_usd, close_fee, to_9dp(p8)) < threshold(size)

    if side == "long":
        # The lowest safe price; one unit below it (and everything lower) liquidates.
        safe = flip(liquidatable, 1, P100)
        edge = safe - 1
    else:
        # The lowest price that liquidates a short; one unit below it is safe.
        edge = flip(liquidatable, P100, 2 * P100)
        safe = edge - 1
    assert liquidatable(edge)
    assert not liquidatable(safe)
    # With $19 of collateral, $1 of close fee and $4 of maintenance margin, $14 of loss is the
    # most a $1000 position may take: 1.4% of $100 away from the entry.
    assert to_9dp(safe) == (
        ENTRY_9DP - 14 * PRICE_9DP // 10 if side == "long" else ENTRY_9DP + 14 * PRICE_9DP // 10
    )
    assert await views.liquidation_price(pool.client, market, owner.key) == to_9dp(safe)

    await post_price(pool, "SOL", safe)
    assert await views.liquidation_state(pool.client, market, owner.key) is False
    watch = [owner.accounts[symbol], liquidator.accounts[symbol], owner.key, liquidator.key]
    ix = liquidate_instruction(pool, liquidator, market, owner, symbol)
    await rejected(pool, [ix], [liquidator.wallet], "NotLiquidatable", watch=watch)
    # A partial close of a position at the edge is still allowed (it is not liquidatable).
    assert (
        await views.exit_price_and_fee(pool.client, market, owner.key, 5_000)
    ).size_usd == size // 2

    await post_price(pool, "SOL", edge)
    assert await views.liquidation_state(pool.client, market, owner.key) is True
    # Once liquidatable, the owner may not shed half of it ...
    ix = close_position_ix(
        pool.client, owner.key, market, receiving_account=owner.accounts[symbol], close_bps=5_000
    )
    await rejected(pool, [ix], [owner.wallet], "InvalidCloseSize", watch=watch)

    custody_before = await pool.custody(symbol)
    result = await liquidate(pool, liquidator, market, owner, symbol)

    # Expected amounts, from the formulas.
    exit_9dp = to_9dp(edge)
    payout_usd = margin(side, size, collateral_usd, close_fee, exit_9dp)
    assert 0 < payout_usd < threshold(size)
    payout_price, payout_expo = (edge, EXPO) if side == "long" else (1_000_000, -6)
    payout = tokens_floor(payout_usd, decimals, payout_price, payout_expo)
    reward_usd = ceil_div(size * FEES["liquidation_reward_bps"], BPS)  # $1
    reward = min(tokens_floor(reward_usd, decimals, payout_price, payout_expo), payout)
    assert (result.reward, result.owner_amount) == (reward, payout - reward)
    assert result.reward > 0
    assert result.owner_amount > 0
    assert not await account_exists(pool, position_key(pool, market, owner.key))
    assert result.owner_lamports == result.rent > 0

    # The pool keeps the rest of the collateral: the close fee (protocol share 25%) and the loss.
    custody = await pool.custody(symbol)
    fee_tokens = tokens_floor(close_fee, decimals, payout_price, payout_expo)
    kept = pos.collateral_amount - payout
    protocol = min(fee_tokens, kept) * FEES["protocol_share_bps"] // BPS
    assert custody.assets.collateral == custody_before.assets.collateral - pos.collateral_amount
    assert custody.assets.locked == custody_before.assets.locked - pos.locked_amount
    assert custody.assets.protocol_fees == custody_before.assets.protocol_fees + protocol
    assert custody.assets.owned == custody_before.assets.owned + kept - protocol
    (event,) = [
        e.data for e in await events(pool, result.signature) if e.name == "PositionLiquidated"
    ]
    assert (event.liquidator, event.owner, event.size_usd) == (liquidator.key, owner.key, size)
    assert (event.reward_amount, event.owner_amount, event.bad_debt_usd) == (
        reward,
        payout - reward,
        0,
    )
    assert (event.fee_usd, event.exit_price) == (close_fee, exit_9dp)
    await assert_conserved(pool)


async def test_position_at_250x_liquidatable_one_price_unit_down(env: PoolEnv) -> None:
    pool = await fine_pool(
        env,
        "at-250x",
        max_initial_leverage=250 * BPS,
        max_leverage=250 * BPS,
        liquidation_reward_bps=10,
    )
    market = long_market(pool)
    owner = await new_trader(pool, SOL=SOL // 100)  # $1
    liquidator = await new_trader(pool)
    await open_position(pool, owner, market, collateral=SOL // 100, size_usd=250 * USD)
    assert (await position(pool, market, owner.key)).collateral_usd == USD
    # Margin $1 == 0.4% of $250: exactly at the maintenance margin, not below it.
    assert margin("long", 250 * USD, USD, 0, ENTRY_9DP) == threshold(250 * USD)
    assert await views.liquidation_state(pool.client, market, owner.key) is False
    ix = liquidate_instruction(pool, liquidator, market, owner, "SOL")
    await rejected(
        pool, [ix], [liquidator.wallet], "NotLiquidatable", watch=[owner.accounts["SOL"], owner.key]
    )

    await post_price(pool, "SOL", P100 - 1)
    # One price unit down: a loss of ceil($250 * 1e-10) = 1 USD unit.
    assert margin("long", 250 * USD, USD, 0, to_9dp(P100 - 1)) == USD - 1
    assert await views.liquidation_state(pool.client, market, owner.key) is True
    result = await liquidate(pool, liquidator, market, owner, "SOL")
    payout = tokens_floor(USD - 1, 9, P100 - 1, EXPO)
    reward = tokens_floor(ceil_div(250 * USD * 10, BPS), 9, P100 - 1, EXPO)  # $0.25
    assert (result.reward, result.owner_amount) == (reward, payout - reward)
    assert result.owner_lamports == result.rent
    await assert_conserved(pool)


# --------------------------------------------------------------------------------------------
# Healthy positions, hostile accounts, self-liquidation, bad debt
# --------------------------------------------------------------------------------------------


async def test_healthy_position_not_liquidatable_and_payout_not_redirectable(
    fees_pool: PoolEnv,
) -> None:
    pool = fees_pool
    market = short_market(pool)
    owner = await new_trader(pool, USDC=100 * USDC)
    attacker = await new_trader(pool)
    await open_position(pool, owner, market, collateral=100 * USDC, size_usd=500 * USD)
    watch = [owner.accounts["USDC"], attacker.accounts["USDC"], owner.key, attacker.key]
    ix = liquidate_instruction(pool, attacker, market, owner, "USDC")
    await rejected(pool, [ix], [attacker.wallet], "NotLiquidatable", watch=watch)

    # Liquidatable now, but the owner's remainder cannot be sent elsewhere.
    await post_price(pool, "SOL", 119_50000000)
    assert await views.liquidation_state(pool.client, market, owner.key) is True
    ix = liquidate_ix(
        pool.client,
        attacker.key,
        market,
        owner.key,
        receiving_account=attacker.accounts["USDC"],
        owner_receiving_account=attacker.accounts["USDC"],
    )
    await rejected(pool, [ix], [attacker.wallet], "InvalidTokenAccount", watch=watch)
    # Nor can the position's rent be sent to anyone but its owner.
    ix = liquidate_instruction(pool, attacker, market, owner, "USDC")
    metas = [
        AccountMeta(attacker.key, m.is_signer, m.is_writable) if m.pubkey == owner.key else m
        for m in ix.accounts
    ]
    await rejected(
        pool,
        [Instruction(ix.program_id, ix.data, metas)],
        [attacker.wallet],
        "InvalidPosition",
        watch=watch,
    )
    result = await liquidate(pool, attacker, market, owner, "USDC")
    # 19.5% up on a $500 short: $97.50 of loss + $0.50 close fee from $99.50 → $1.50 left,
    # under the $2 maintenance margin; the liquidator takes 0.1% of size ($0.50) of it.
    assert result.reward == ceil_div(500 * USD * FEES["liquidation_reward_bps"], BPS) == USDC // 2
    assert result.owner_amount == USDC
    await assert_conserved(pool)


async def test_self_liquidation_pays_no_more_than_a_close(fees_pool: PoolEnv) -> None:
    pool = fees_pool
    market = long_market(pool)
    closer = await new_trader(pool, SOL=SOL // 5)
    self_liquidator = await new_trader(pool, SOL=SOL // 5)
    for trader in (closer, self_liquidator):
        await open_position(pool, trader, market, collateral=SOL // 5, size_usd=1_000 * USD)
    await post_price(pool, "SOL", 98_50000000)
    assert await views.liquidation_state(pool.client, market, closer.key) is True

    before = await pool.balance(closer.accounts["SOL"])
    await close_position(pool, closer, market)
    closed = await pool.balance(closer.accounts["SOL"]) - before
    before = await pool.balance(self_liquidator.accounts["SOL"])
    signature = await trade.liquidate(
        pool.client,
        self_liquidator.wallet,
        market,
        self_liquidator.key,
        receiving_account=self_liquidator.accounts["SOL"],
        owner_receiving_account=self_liquidator.accounts["SOL"],
    )
    liquidated = await pool.balance(self_liquidator.accounts["SOL"]) - before
    (event,) = [e.data for e in await events(pool, signature) if e.name == "PositionLiquidated"]
    assert event.reward_amount > 0
    # Reward and remainder together are the payout of a plain close, never more.
    assert liquidated == event.reward_amount + event.owner_amount == closed
    await assert_conserved(pool)


async def test_bad_debt_position_can_be_liquidated_or_closed(env: PoolEnv) -> None:
    pool = await fine_pool(env, "debt", liquidation_reward_bps=50)
    market = long_market(pool)
    owner = await new_trader(pool, SOL=SOL)
    closer = await new_trader(pool, SOL=SOL)
    liquidator = await new_trader(pool)
    for trader in (owner, closer):
        await open_position(pool, trader, market, collateral=SOL, size_usd=1_000 * USD)  # $100: 10x
    await post_price(pool, "SOL", 85 * 10**8)  # -15%: $150 of loss on $100 of collateral

    # A long locks only what it borrows: $1000 - $100 of collateral = $900, 9 SOL at $100.
    locked = (await position(pool, market, owner.key)).locked_amount
    assert locked == 9 * SOL
    custody_before = await pool.custody("SOL")
    result = await liquidate(pool, liquidator, market, owner, "SOL")
    assert (result.reward, result.owner_amount) == (0, 0)
    assert result.owner_lamports == result.rent
    (event,) = [
        e.data for e in await events(pool, result.signature) if e.name == "PositionLiquidated"
    ]
    assert (event.loss_usd, event.bad_debt_usd) == (150 * USD, 50 * USD)
    custody = await pool.custody("SOL")
    # The whole collateral stays with the LPs and the lock is released.
    assert custody.assets.owned == custody_before.assets.owned + SOL
    assert custody.assets.locked == custody_before.assets.locked - locked
    await assert_conserved(pool)

    before = await pool.balance(closer.accounts["SOL"])
    await close_position(pool, closer, market)
    assert await pool.balance(closer.accounts["SOL"]) == before
    assert not await account_exists(pool, position_key(pool, market, closer.key))
    await assert_conserved(pool)


# --------------------------------------------------------------------------------------------
# Fees alone: borrow interest pushes a position over the edge, to the second
# --------------------------------------------------------------------------------------------


async def test_borrow_fees_make_a_position_liquidatable_to_the_second(env: PoolEnv) -> None:
    # The long borrows $1000 - $20 = $980: 9.8 SOL locked of 19.6 SOL owned, 50% used.
    locked, owned = 98 * SOL // 10, 196 * SOL // 10
    size, collateral_usd = 1_000 * USD, 20 * USD
    rate = ceil_div(10_000_000 * ceil_div(locked * RATE_ONE, owned), RATE_ONE)
    assert rate == 5_000_000  # 0.5%/h

    def fee(elapsed: int) -> int:
        """The index moves by exactly ``rate * elapsed``; the fee rounds up once."""
        return ceil_div(rate * elapsed * size, RATE_ONE * HOUR)

    def liquidatable(elapsed: int) -> bool:
        return collateral_usd - fee(elapsed) < threshold(size)

    edge = flip(liquidatable, 0, 10 * HOUR)  # the first second at which it is liquidatable
    assert edge == 11_521  # $16 of interest is 3.2 h at 0.5%/h; one second more tips it over

    # Each attempt gets a fresh pool: a closed attempt's fee would change the pool's utilization.
    for attempt in range(3):
        pool = await add_pool(env, f"interest-{attempt}", FINE_TOKENS)
        await pool.configure("SOL", hourly_rate=10_000_000, max_price_age_sec=DAY)  # 1%/h
        await pool.configure("USDC", max_price_age_sec=DAY)
        await provide_liquidity(pool, "SOL", owned)
        market = long_market(pool)
        owner = await new_trader(pool, SOL=SOL // 5)
        await open_position(pool, owner, market, collateral=SOL // 5, size_usd=size)
        opened = await position(pool, market, owner.key)
        t0 = opened.open_time
        assert opened.locked_amount == locked
        custody = await pool.custody("SOL")
        assert (custody.assets.locked, custody.assets.owned) == (locked, owned)
        await early_in_second()
        await set_clock(pool, t0 + edge - 1)
        seen = await wait_confirmed_clock(pool, t0 + edge - 1)
        state = await views.liquidation_state(pool.client, market, owner.key)
        pnl = await views.pnl(pool.client, market, owner.key)
        if seen == await confirmed_clock(pool) == t0 + edge - 1:
            break
    else:
        pytest.fail("could not read the views within one second")
    assert state is False
    assert pnl.borrow_fee_usd == fee(edge - 1) == 16 * USD

    liquidator = await new_trader(pool)
    await set_clock(pool, t0 + edge)
    await wait_confirmed_clock(pool, t0 + edge)
    assert await views.liquidation_state(pool.client, market, owner.key) is True
    result = await liquidate(pool, liquidator, market, owner, "SOL")
    elapsed = await block_time(pool, result.signature) - t0
    assert elapsed >= edge
    assert (result.reward, result.owner_amount) == (
        0,
        tokens_floor(collateral_usd - fee(elapsed), 9, P100, EXPO),
    )
    (event,) = [
        e.data for e in await events(pool, result.signature) if e.name == "PositionLiquidated"
    ]
    assert event.borrow_fee_usd == fee(elapsed)
    await assert_conserved(pool)


# --------------------------------------------------------------------------------------------
# Keeper races: a top-up first, a stale price refreshed in the liquidation's own transaction
# --------------------------------------------------------------------------------------------


async def test_top_up_before_the_keeper_makes_liquidation_fail_cleanly(fees_pool: PoolEnv) -> None:
    pool = fees_pool
    market = short_market(pool)
    owner = await new_trader(pool, USDC=200 * USDC)
    keeper = await new_trader(pool)
    await open_position(pool, owner, market, collateral=100 * USDC, size_usd=500 * USD)
    await post_price(pool, "SOL", 119_50000000)  # as above: $1.50 of margin, under $2
    assert await views.liquidation_state(pool.client, market, owner.key) is True

    await trade.add_collateral(
        pool.client, owner.wallet, market, 50 * USDC, funding_account=owner.accounts["USDC"]
    )
    assert await views.liquidation_state(pool.client, market, owner.key) is False
    watch = [owner.accounts["USDC"], keeper.accounts["USDC"], owner.key, keeper.key]
    ix = liquidate_instruction(pool, keeper, market, owner, "USDC")
    await rejected(pool, [ix], [keeper.wallet], "NotLiquidatable", watch=watch)
    # $149.50 of collateral - $97.50 of loss - $0.50 close fee.
    assert await close_and_receive(pool, owner, market, "USDC") == 51_500_000
    await assert_conserved(pool)


async def test_stale_price_refreshed_in_the_liquidation_transaction(fees_pool: PoolEnv) -> None:
    pool = fees_pool
    market = long_market(pool)
    owner = await new_trader(pool, SOL=SOL // 5)
    keeper = await new_trader(pool)
    await open_position(pool, owner, market, collateral=SOL // 5, size_usd=1_000 * USD)
    max_age = (await pool.custody("SOL")).oracle.max_price_age_sec
    await pool.advance(max_age + 1)
    watch = [owner.accounts["SOL"], keeper.accounts["SOL"], owner.key, keeper.key]

    # Nothing trades on the old price, not even a liquidation ...
    ix = liquidate_instruction(pool, keeper, market, owner, "SOL")
    await rejected(pool, [ix], [keeper.wallet], "StaleOraclePrice", watch=watch)
    close = close_position_ix(
        pool.client, owner.key, market, receiving_account=owner.accounts["SOL"]
    )
    await rejected(pool, [close], [owner.wallet], "StaleOraclePrice", watch=watch)

    # ... but a fresh price posted in the same transaction is used at once.
    now = await confirmed_clock(pool)
    fresh = pool.client.set_price_ix(
        pool.pool,
        pool.mint("SOL"),
        pool.admin.pubkey(),
        price=98_50000000,
        expo=EXPO,
        conf=0,
        ema=98_50000000,
        publish_time=now,
    )
    reward_before = await pool.balance(keeper.accounts["SOL"])
    owner_before = await pool.balance(owner.accounts["SOL"])
    await pool.client.send([fresh, ix], [pool.admin, keeper.wallet])
    pool.last_publish["SOL"] = now
    # $19 - $15 of loss - $1 close fee = $3 at $98.50; the keeper's $1 out of it.
    payout = tokens_floor(3 * USD, 9, 98_50000000, EXPO)
    reward = tokens_floor(USD, 9, 98_50000000, EXPO)
    assert await pool.balance(keeper.accounts["SOL"]) - reward_before == reward
    assert await pool.balance(owner.accounts["SOL"]) - owner_before == payout - reward
    assert not await account_exists(pool, position_key(pool, market, owner.key))
    await assert_conserved(pool)
