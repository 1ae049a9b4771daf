"""Class 20, zero and negative equity.

A position whose loss reaches or passes its collateral can always be closed by its owner or
liquidated by anyone: longs and shorts of SOL and ETH and both sides of the ETH² payoff market,
at three depths (the loss eats the collateral and the fees are left unpaid, the loss is three
times the collateral, and the price gone to almost nothing or ten times up). The owner receives
nothing, the bad debt reported is the loss plus fees less the collateral (checked against the
event's prices with integer math done here), and the pool stays conserved. The insurance fund
covers bad debt before the LPs: all of it while the fund is large enough, then what it holds.
Dust positions are refused at open: zero size, zero collateral, collateral that does not cover
the fee, size under the custody's minimum; a partial close cannot leave dust behind.
"""

from __future__ import annotations

from fractions import Fraction
from math import isqrt
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from adversarial_economics import (
    event_data,
    fresh_pool,
    funded_traders,
    funded_wallet,
    keeper_tick,
    seed_liquidity,
    send,
    token_amounts,
    tokens_exact,
)
from adversary import CONFIGS, ETH, FEES, SOL, USD, USDC, USDT, Attack, World
from pool_env import PoolEnv, TokenSpec
from solders.instruction import Instruction
from solders.keypair import Keypair
from trade_support import Trader, assert_conserved, ceil_div, post_price

from perpool import trade
from perpool.trade import LONG, SHORT, Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(20)]

E8 = 10**8
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * E8, -8),
    TokenSpec("ETH", 8, False, 3_000 * E8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
    TokenSpec("USDT", 6, True, 1_000_000, -6),
    TokenSpec("ETHSQ", 8, False, 1_000 * E8, -8),
)
BASE = {t.symbol: t.price for t in TOKENS}
MIN_TRADE = 10 * USD
EQUITY_CONFIGS = CONFIGS | {
    "SOL": CONFIGS["SOL"] | {"min_trade_size_usd": MIN_TRADE},
    "ETHSQ": CONFIGS["ETHSQ"] | {"min_trade_size_usd": MIN_TRADE},
}
SIZE = 10_000 * USD
# 10x: $1000 of collateral, $990 after the open fee.
LEGS = {
    LONG: (
        ("long SOL", "SOL", "SOL", 10 * SOL),
        ("long ETH", "ETH", "ETH", ETH // 3 + 1),
        ("long ETH²", "ETHSQ", "USDC", 1_000 * USDC),
    ),
    SHORT: (
        ("short SOL", "SOL", "USDC", 1_000 * USDC),
        ("short ETH", "ETH", "USDT", 1_000 * USDT),
        ("short ETH²", "ETHSQ", "USDC", 1_000 * USDC),
    ),
}
# The value move against the position: 9.9% eats the $990 exactly (the close fee is left
# unpaid), 30% is three times the collateral; "wiped out" is a long's price at one unit and a
# short's price ten times up.
DEPTHS = ("collateral gone", "three times the collateral", "wiped out")


def moved_price(symbol: str, side: str, depth: str) -> int:
    if depth == "wiped out":
        factor = Fraction(0) if side == LONG else Fraction(10)
    else:
        move = Fraction(99, 1_000) if depth == "collateral gone" else Fraction(30, 100)
        factor = 1 - move if side == LONG else 1 + move
    if symbol == "ETHSQ":
        price = isqrt(int(BASE[symbol] ** 2 * factor))
    else:
        price = int(BASE[symbol] * factor)
    return max(price, 1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pool(world: World) -> PoolEnv:
    built = await fresh_pool(world, "negative-equity", TOKENS, EQUITY_CONFIGS)
    await seed_liquidity(
        built, SOL=2_000 * SOL, ETH=200 * ETH, USDC=2_000_000 * USDC, USDT=1_000_000 * USDT
    )
    return built


FUNDS = {"SOL": 50 * SOL, "ETH": 5 * ETH, "USDC": 20_000 * USDC, "USDT": 20_000 * USDT}


def market(pool: PoolEnv, side: str, symbol: str, held: str) -> Market:
    return Market(pool.pool, pool.mint(symbol), pool.mint(held), side)


def open_ix(pool: PoolEnv, owner: Trader, m: Market, held: str, collateral: int, size: int) -> Any:
    return trade.open_position_ix(
        pool.client,
        owner.key,
        m,
        collateral_amount=collateral,
        size_usd=size,
        funding_account=owner.accounts[held],
    )


def check_settlement(event: Any, position: Any, side: str, exit_9dp: int | None) -> None:
    """The loss from the entry and exit prices (rounded up), and the bad debt: loss plus fees
    less the collateral, when positive."""
    entry = position.price
    if exit_9dp is not None:
        assert event.exit_price == exit_9dp
    move = event.exit_price - entry if side == SHORT else entry - event.exit_price
    assert move > 0
    assert event.loss_usd == ceil_div(position.size_usd * move, entry)
    assert event.profit_usd == 0
    owed = event.loss_usd + event.fee_usd + event.borrow_fee_usd + event.funding_paid_usd
    credit = position.collateral_usd + event.funding_received_usd
    owed += getattr(event, "auto_close_fee_usd", 0)
    assert event.bad_debt_usd == max(0, owed - credit)
    assert event.bad_debt_usd > 0


@pytest.mark.parametrize("side", [LONG, SHORT])
@pytest.mark.parametrize("depth", DEPTHS)
async def test_a_position_under_water_can_be_closed_or_liquidated(
    pool: PoolEnv, attack: Attack, side: str, depth: str
) -> None:
    owner, liquidator = await funded_traders(pool, 2, **FUNDS)
    legs = LEGS[side]
    for _, symbol, held, collateral in legs:
        m = market(pool, side, symbol, held)
        await send(pool, [open_ix(pool, owner, m, held, collateral, SIZE)], owner.wallet)
    for symbol in ("SOL", "ETH", "ETHSQ"):
        await post_price(pool, symbol, moved_price(symbol, side, depth))
    try:
        for index, (name, symbol, held, _) in enumerate(legs):
            m = market(pool, side, symbol, held)
            key = trade.position_key(pool.client, m, owner.key)
            liquidate = (index + DEPTHS.index(depth)) % 2 == 1
            how = "liquidated by a third party" if liquidate else "closed by its owner"
            async with attack.holds(f"{name} {depth}: {how}"):
                position = await pool.client.fetch("Position", key)
                custody_before = await pool.custody(held)
                before = await token_amounts(
                    pool, [owner.accounts[held], liquidator.accounts[held]]
                )
                if liquidate:
                    ix = trade.liquidate_ix(
                        pool.client,
                        liquidator.key,
                        m,
                        owner.key,
                        receiving_account=liquidator.accounts[held],
                        owner_receiving_account=owner.accounts[held],
                    )
                    signature = await send(pool, [ix], liquidator.wallet)
                    (event,) = await event_data(pool, signature, "PositionLiquidated")
                    assert (event.close_bps, event.reward_amount, event.owner_amount) == (
                        10_000,
                        0,
                        0,
                    )
                else:
                    ix = trade.close_position_ix(
                        pool.client, owner.key, m, receiving_account=owner.accounts[held]
                    )
                    signature = await send(pool, [ix], owner.wallet)
                    (event,) = await event_data(pool, signature, "PositionClosed")
                    assert event.payout_amount == 0
                assert (await pool.client.connection.get_account_info(key)).value is None
                assert (
                    await token_amounts(pool, [owner.accounts[held], liquidator.accounts[held]])
                    == before
                )
                exit_9dp = None if symbol == "ETHSQ" else moved_price(symbol, side, depth) * 10
                check_settlement(event, position, side, exit_9dp)
                # The LPs keep the whole collateral (less the protocol's share of the fee it
                # could pay) and the lock is released.
                custody_after = await pool.custody(held)
                assert custody_after.assets.collateral == (
                    custody_before.assets.collateral - position.collateral_amount
                )
                assert custody_after.assets.locked == (
                    custody_before.assets.locked - position.locked_amount
                )
                assert custody_after.assets.owned >= custody_before.assets.owned + (
                    position.collateral_amount * 8 // 10
                )
                await assert_conserved(pool)
    finally:
        for symbol in ("SOL", "ETH", "ETHSQ"):
            await post_price(pool, symbol, BASE[symbol])


async def test_the_keeper_liquidates_longs_whose_collateral_crashed(
    pool: PoolEnv, attack: Attack, tmp_path: Path
) -> None:
    """SOL and ETH at one price unit: the bad debt is worth more base units than a u64 holds;
    the keeper still evaluates and liquidates both longs."""
    (owner,) = await funded_traders(pool, 1, **FUNDS)
    payer = Keypair()
    await funded_wallet(pool, payer)
    legs = LEGS[LONG][:2]
    for _, symbol, held, collateral in legs:
        m = market(pool, LONG, symbol, held)
        await send(pool, [open_ix(pool, owner, m, held, collateral, SIZE)], owner.wallet)
    for symbol in ("SOL", "ETH"):
        await post_price(pool, symbol, 1)
    try:
        results = {r["target"]: r for r in await keeper_tick(pool, tmp_path, payer)}
        for name, symbol, held, _ in legs:
            key = trade.position_key(pool.client, market(pool, LONG, symbol, held), owner.key)
            async with attack.holds(f"the keeper liquidates a {name} whose price fell to one unit"):
                assert results.get(str(key), {}).get("status") == "landed", results
                assert (await pool.client.connection.get_account_info(key)).value is None
                await assert_conserved(pool)
    finally:
        for symbol in ("SOL", "ETH"):
            await post_price(pool, symbol, BASE[symbol])


# ------------------------------------------------------------------------------------------
# The insurance fund before the LPs
# ------------------------------------------------------------------------------------------

COVER_TOKENS = (TokenSpec("SOL", 9, False, 100 * E8, -8), TokenSpec("USDC", 6, True, 1_000_000, -6))
COVER = FEES | {
    "max_initial_leverage": 50_000,  # 5x
    "max_leverage": 100_000,  # 10x: maintenance margin 10%
    "liquidation_steps": ((10_000, 10_000),),
    "liquidation_reward_bps": 1_000,
    "insurance_fund_fraction_bps": 10_000,
    "insurance_fund_cap_usd": 1_000_000 * USD,
}


async def test_the_insurance_fund_covers_bad_debt_before_the_lps(
    world: World, attack: Attack
) -> None:
    pool = await fresh_pool(world, "insurance", COVER_TOKENS, {"SOL": COVER, "USDC": COVER})
    await seed_liquidity(pool, SOL=1_000 * SOL, USDC=500_000 * USDC)
    funder, covered, beyond, liquidator = await funded_traders(pool, 4, USDC=10_000 * USDC)
    short = Market.short(pool.pool, pool.mint("SOL"), pool.mint("USDC"))
    price = 100 * E8

    async def open_short(owner: Trader) -> None:
        await send(pool, [open_ix(pool, owner, short, "USDC", 2_500 * USDC, SIZE)], owner.wallet)

    def liquidate(owner: Trader) -> Instruction:
        return trade.liquidate_ix(
            pool.client,
            liquidator.key,
            short,
            owner.key,
            receiving_account=liquidator.accounts["USDC"],
            owner_receiving_account=owner.accounts["USDC"],
        )

    await open_short(funder)
    price = price * 115 // 100  # +15%: $2490 - $1500 - $10 = $980, under the 10% margin
    await post_price(pool, "SOL", price)
    async with attack.holds("a liquidation pays its whole discount into the insurance fund"):
        signature = await send(pool, [liquidate(funder)], liquidator.wallet)
        (event,) = await event_data(pool, signature, "PositionLiquidated")
        assert event.insurance_amount == event.discount_amount > 0
        assert (await pool.custody("USDC")).insurance.balance == event.insurance_amount
        await assert_conserved(pool)

    for owner, label in ((covered, "all of the bad debt"), (beyond, "what it holds")):
        await open_short(owner)
        # +30% from here leaves $520 of bad debt; then +50% from there leaves $2520.
        price = price * (130 if owner is covered else 150) // 100
        await post_price(pool, "SOL", price)
        async with attack.holds(f"bad debt of a short SOL: the fund covers {label}"):
            usdc = await pool.custody("USDC")
            fund = usdc.insurance.balance
            signature = await send(pool, [liquidate(owner)], liquidator.wallet)
            (event,) = await event_data(pool, signature, "PositionLiquidated")
            (changed,) = await event_data(pool, signature, "InsuranceFundChanged")
            wanted = ceil_div(event.bad_debt_usd * 10**6, 1_000_000)  # USDC at $1
            assert event.bad_debt_usd > 0
            assert changed.outflow == min(fund, wanted)
            assert (changed.outflow == wanted) == (owner is covered)
            after = await pool.custody("USDC")
            assert after.insurance.balance == fund - changed.outflow
            assert (
                after.insurance.bad_debt_covered_usd - usdc.insurance.bad_debt_covered_usd
                == min(event.bad_debt_usd, changed.outflow)
            )
            # The LPs get the collateral (less the protocol's share of the fee it paid) and
            # the fund's outflow.
            position_collateral = 2_500 * USDC - event_fee_tokens(10 * USD)
            protocol = after.assets.protocol_fees - usdc.assets.protocol_fees
            assert after.assets.owned - usdc.assets.owned == (
                position_collateral - protocol + changed.outflow
            )
            assert tokens_exact(event.bad_debt_usd, 6, Fraction(1)) >= changed.outflow
            await assert_conserved(pool)


def event_fee_tokens(fee_usd: int) -> int:
    """The open fee in USDC units at $1 (taken out of the collateral at open)."""
    return fee_usd


# ------------------------------------------------------------------------------------------
# Dust
# ------------------------------------------------------------------------------------------


async def test_dust_positions_are_refused(pool: PoolEnv, attack: Attack) -> None:
    (trader,) = await funded_traders(pool, 1, **FUNDS)
    long_sol = market(pool, LONG, "SOL", "SOL")
    short_sol = market(pool, SHORT, "SOL", "USDC")
    long_eth2 = market(pool, LONG, "ETHSQ", "USDC")
    short_eth = market(pool, SHORT, "ETH", "USDT")
    cases = (
        ("long SOL of zero size", long_sol, "SOL", SOL, 0, "ZeroAmount"),
        ("short SOL with zero collateral", short_sol, "USDC", 0, 100 * USD, "ZeroAmount"),
        ("long ETH² of zero size", long_eth2, "USDC", 10 * USDC, 0, "ZeroAmount"),
        (
            "long SOL one unit under the $10 minimum",
            long_sol,
            "SOL",
            SOL // 50,
            MIN_TRADE - 1,
            "TradeTooSmall",
        ),
        (
            "short SOL one unit under the $10 minimum",
            short_sol,
            "USDC",
            5 * USDC,
            MIN_TRADE - 1,
            "TradeTooSmall",
        ),
        (
            "long ETH² one unit under the $10 minimum",
            long_eth2,
            "USDC",
            5 * USDC,
            MIN_TRADE - 1,
            "TradeTooSmall",
        ),
        (
            "short ETH: 1 USDT unit of collateral",
            short_eth,
            "USDT",
            1,
            10 * USD,
            "InsufficientCollateral",
        ),
        (
            "long SOL: collateral worth the $0.10 minimum fee",
            long_sol,
            "SOL",
            SOL // 1_000,
            10 * USD,
            "InsufficientCollateral",
        ),
    )
    for label, m, held, collateral, size, error in cases:
        await attack.rejected(
            f"open {label}",
            [open_ix(pool, trader, m, held, collateral, size)],
            [trader.wallet],
            error=error,
            watch=trader.accounts.values(),
            env=pool,
        )
    # A partial close may not leave less than the minimum behind.
    await send(pool, [open_ix(pool, trader, short_sol, "USDC", 10 * USDC, 50 * USD)], trader.wallet)
    await attack.rejected(
        "partial close of a $50 short SOL leaving $5 open",
        [
            trade.close_position_ix(
                pool.client,
                trader.key,
                short_sol,
                receiving_account=trader.accounts["USDC"],
                close_bps=9_000,
            )
        ],
        [trader.wallet],
        error="TradeTooSmall",
        watch=trader.accounts.values(),
        env=pool,
    )
    await send(
        pool,
        [
            trade.close_position_ix(
                pool.client, trader.key, short_sol, receiving_account=trader.accounts["USDC"]
            )
        ],
        trader.wallet,
    )
