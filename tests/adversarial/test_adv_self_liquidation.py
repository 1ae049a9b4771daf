"""Class 18, self-liquidation: an owner liquidating its own position never gets more than a
plain close at the same price.

Twin positions (same market, size, collateral, opened in one transaction, so the same entry
price, fees and borrow snapshot) in a pool of their own with the world's risk engine: the
two-step ladder (half the position below the maintenance margin, all of it below half of it),
the liquidator's discount and the insurance fund. After a price move one twin closes, the other
liquidates itself in the same transaction (the owner as liquidator, paid into its own account)
and, after a partial step, keeps liquidating or closes what is left. Everything the
self-liquidator receives is compared with the closer's payout, on every market (longs and
shorts of SOL and ETH, both sides of the ETH² payoff market) and at three depths: the first
step, the last step, and bad debt. Variants: the fund at its cap with an auto-close fee, the
owner's second wallet as the liquidator, and the one-step auto-close.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import isqrt
from typing import Any

import pytest
import pytest_asyncio
from adversarial_economics import (
    event_data,
    fresh_pool,
    funded_traders,
    seed_liquidity,
    send,
    token_amounts,
)
from adversary import CONFIGS, ETH, SOL, USD, USDC, USDT, Attack, World
from pool_env import PoolEnv, TokenSpec
from solders.instruction import Instruction
from trade_support import Trader, post_price

from perpool import trade, views
from perpool.trade import LONG, SHORT, Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(18)]

E8 = 10**8
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * E8, -8),
    TokenSpec("ETH", 8, False, 3_000 * E8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("USDT", 6, True, 1_000_000, -6),
    TokenSpec("ETHSQ", 8, False, 1_000 * E8, -8),
)
BASE = {t.symbol: t.price for t in TOKENS}
SIZE = 10_000 * USD
# 20x: $500 of collateral ($490 after the open fee) on $10,000. With the maintenance margin at
# 1% (100x) and the close fee $10: a 4% move leaves $80 (first step, under $100), 4.5% leaves
# $30 (last step, under $50), 6% leaves -$120 (bad debt).
DEPTHS = {
    "first step": Fraction(40, 1_000),
    "last step": Fraction(45, 1_000),
    "bad debt": Fraction(6, 100),
}
EXPECTED_STEP = {"first step": 0, "last step": 1, "bad debt": 1}


@dataclass(frozen=True)
class Leg:
    key: str
    symbol: str
    side: str
    collateral_symbol: str
    collateral: int


LEGS = {
    LONG: (
        Leg("long SOL", "SOL", LONG, "SOL", 5 * SOL),
        Leg("long ETH", "ETH", LONG, "ETH", ETH // 6 + 1),
        Leg("long ETH²", "ETHSQ", LONG, "USDC", 500 * USDC),
    ),
    SHORT: (
        Leg("short SOL", "SOL", SHORT, "USDC", 500 * USDC),
        Leg("short ETH", "ETH", SHORT, "USDT", 500 * USDT),
        Leg("short ETH²", "ETHSQ", SHORT, "USDC", 500 * USDC),
    ),
}


def market(pool: PoolEnv, leg: Leg) -> Market:
    return Market(pool.pool, pool.mint(leg.symbol), pool.mint(leg.collateral_symbol), leg.side)


def moved_price(symbol: str, side: str, move: Fraction) -> int:
    """The oracle price that moves the market's value by ``move`` against ``side`` (the ETH²
    market moves with the square of its oracle price)."""
    factor = 1 - move if side == LONG else 1 + move
    if symbol == "ETHSQ":
        return isqrt(int(BASE[symbol] ** 2 * factor))
    return int(BASE[symbol] * factor)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(world: World) -> PoolEnv:
    built = await fresh_pool(world, "self-liquidation", TOKENS, CONFIGS)
    await seed_liquidity(
        built, SOL=2_000 * SOL, ETH=200 * ETH, USDC=2_000_000 * USDC, USDT=1_000_000 * USDT
    )
    return built


FUNDS = {"SOL": 50 * SOL, "ETH": 5 * ETH, "USDC": 10_000 * USDC, "USDT": 10_000 * USDT}


def open_ix(pool: PoolEnv, trader: Trader, leg: Leg) -> Instruction:
    return trade.open_position_ix(
        pool.client,
        trader.key,
        market(pool, leg),
        collateral_amount=leg.collateral,
        size_usd=SIZE,
        funding_account=trader.accounts[leg.collateral_symbol],
    )


def close_ix(pool: PoolEnv, trader: Trader, leg: Leg) -> Instruction:
    return trade.close_position_ix(
        pool.client,
        trader.key,
        market(pool, leg),
        receiving_account=trader.accounts[leg.collateral_symbol],
    )


def liquidate_ix(pool: PoolEnv, liquidator: Trader, owner: Trader, leg: Leg) -> Instruction:
    return trade.liquidate_ix(
        pool.client,
        liquidator.key,
        market(pool, leg),
        owner.key,
        receiving_account=liquidator.accounts[leg.collateral_symbol],
        owner_receiving_account=owner.accounts[leg.collateral_symbol],
    )


async def position_exists(pool: PoolEnv, leg: Leg, owner: Trader) -> bool:
    key = trade.position_key(pool.client, market(pool, leg), owner.key)
    return (await pool.client.connection.get_account_info(key)).value is not None


async def move(pool: PoolEnv, side: str, depth: Fraction) -> None:
    for symbol in ("SOL", "ETH", "ETHSQ"):
        await post_price(pool, symbol, moved_price(symbol, side, depth))


async def restore(pool: PoolEnv) -> None:
    for symbol in ("SOL", "ETH", "ETHSQ"):
        await post_price(pool, symbol, BASE[symbol])


async def compare(
    pool: PoolEnv,
    closer: Trader,
    owner: Trader,
    leg: Leg,
    liquidator: Trader | None = None,
) -> tuple[int, int, list[Any]]:
    """Closes ``closer``'s twin and has ``owner``'s position liquidated by the owner itself
    (or by ``liquidator``, a wallet of the same owner) in one transaction; then liquidates again
    while the remainder is liquidatable and closes it otherwise. Returns (what the closer got,
    what the owner's side got in all, the liquidation events)."""
    helper = liquidator or owner
    symbol = leg.collateral_symbol
    mine = [closer.accounts[symbol], owner.accounts[symbol], helper.accounts[symbol]]
    before = await token_amounts(pool, mine)
    signature = await pool.client.send(
        [close_ix(pool, closer, leg), liquidate_ix(pool, helper, owner, leg)],
        [closer.wallet, helper.wallet],
    )
    found = await event_data(pool, signature, "PositionLiquidated")
    for _ in range(4):
        if not await position_exists(pool, leg, owner):
            break
        if await views.liquidation_state(pool.client, market(pool, leg), owner.key):
            signature = await pool.client.send(
                [liquidate_ix(pool, helper, owner, leg)], [helper.wallet]
            )
            found += await event_data(pool, signature, "PositionLiquidated")
        else:
            await send(pool, [close_ix(pool, owner, leg)], owner.wallet)
    assert not await position_exists(pool, leg, owner)
    after = await token_amounts(pool, mine)
    closed = after[0] - before[0]
    owner_side = after[1] - before[1] + (after[2] - before[2] if helper is not owner else 0)
    return closed, owner_side, found


@pytest.mark.parametrize("side", [LONG, SHORT])
@pytest.mark.parametrize("depth", list(DEPTHS))
async def test_self_liquidation_pays_no_more_than_a_close(
    pool: PoolEnv, attack: Attack, side: str, depth: str
) -> None:
    closer, owner = await funded_traders(pool, 2, **FUNDS)
    legs = LEGS[side]
    for leg in legs:
        await pool.client.send(
            [open_ix(pool, closer, leg), open_ix(pool, owner, leg)], [closer.wallet, owner.wallet]
        )
    await move(pool, side, DEPTHS[depth])
    try:
        for leg in legs:
            async with attack.holds(f"self-liquidation of a {leg.key} at the {depth}"):
                assert await views.liquidation_state(pool.client, market(pool, leg), owner.key)
                closed, self_liquidated, found = await compare(pool, closer, owner, leg)
                assert found[0].step == EXPECTED_STEP[depth]
                assert found[0].liquidator == found[0].owner == owner.key
                assert self_liquidated <= closed, (self_liquidated, closed)
                if depth == "bad debt":
                    assert closed == self_liquidated == 0
                    assert found[0].bad_debt_usd > 0
                else:
                    assert found[0].reward_amount > 0
    finally:
        await restore(pool)


async def test_second_wallet_fund_at_cap_and_one_step_variants(
    pool: PoolEnv, attack: Attack
) -> None:
    # The fund held in USDC is at its cap (zero); SOL liquidates in one step with a 1% discount
    # and a $2 auto-close fee.
    await pool.configure("USDC", **(CONFIGS["USDC"] | {"insurance_fund_cap_usd": 0}))
    one_step = {
        "liquidation_steps": ((10_000, 10_000),),
        "liquidation_reward_bps": 100,
        "auto_close_fee_usd": 2 * USD,
    }
    await pool.configure("SOL", **(CONFIGS["SOL"] | one_step))
    closer, owner, second = await funded_traders(pool, 3, **FUNDS)
    legs = {leg.key: leg for leg in LEGS[SHORT]}
    for leg in legs.values():
        await pool.client.send(
            [open_ix(pool, closer, leg), open_ix(pool, owner, leg)], [closer.wallet, owner.wallet]
        )
    await move(pool, SHORT, DEPTHS["last step"])
    try:
        async with attack.holds("short SOL, one-step auto-close, fund at its cap, $2 fee"):
            closed, self_liquidated, found = await compare(pool, closer, owner, legs["short SOL"])
            (event,) = found
            assert (event.step, event.close_bps, event.auto_close_fee_usd) == (0, 10_000, 2 * USD)
            assert event.insurance_amount == 0
            assert event.protocol_amount > 0
            assert self_liquidated <= closed
        async with attack.holds("short ETH² liquidated by the owner's second wallet"):
            closed, self_liquidated, found = await compare(
                pool, closer, owner, legs["short ETH²"], liquidator=second
            )
            assert found[0].liquidator == second.key
            assert self_liquidated <= closed
        async with attack.holds("short ETH (a USDT fund) liquidated by the owner's second wallet"):
            closed, self_liquidated, found = await compare(
                pool, closer, owner, legs["short ETH"], liquidator=second
            )
            assert self_liquidated <= closed
    finally:
        await restore(pool)
        await pool.configure("USDC", **CONFIGS["USDC"])
        await pool.configure("SOL", **CONFIGS["SOL"])


async def test_a_healthy_position_cannot_be_self_liquidated(pool: PoolEnv, attack: Attack) -> None:
    (owner,) = await funded_traders(pool, 1, **FUNDS)
    for leg in (LEGS[LONG][0], LEGS[SHORT][2]):
        await send(pool, [open_ix(pool, owner, leg)], owner.wallet)
        await attack.rejected(
            f"self-liquidation of a healthy {leg.key}",
            [liquidate_ix(pool, owner, owner, leg)],
            [owner.wallet],
            error="NotLiquidatable",
            watch=owner.accounts.values(),
            env=pool,
        )
        await send(pool, [close_ix(pool, owner, leg)], owner.wallet)
