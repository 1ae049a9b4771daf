"""Class 17, fee bypass: every way of trading around the fee schedule still pays it.

The schedule is computed here from the world's configuration, unrounded (``Fraction``):
trading fee max(min fee, bps x size) on each open and close, swap fee bps x output, LP fee at
least the minimum bps, borrow fee utilization x hourly rate x size x time. Open+close in one
transaction, closes split into slices, one position split over wallets, A→B→A swaps, LP round
trips in one transaction and across slots, self-liquidation and collateral churn: each event's
fee is at least the schedule, and the trader ends with no more than it started with less the
scheduled fees (prices constant).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from adversarial_economics import (
    event_data,
    fee_exact,
    fresh_pool,
    funded_traders,
    lp_supply,
    mirror_add,
    new_trader,
    price_of,
    seed_liquidity,
    send,
    token_amounts,
    tokens_exact,
    usd_exact,
)
from adversary import ETH, FEES, SOL, USD, USDC, USDT, Attack, World, symbol_of
from pool_env import PoolEnv, TokenSpec
from solders.instruction import Instruction
from trade_support import BPS, RATE_ONE, Trader, block_time, post_price

from perpool import lp, trade
from perpool.math import pricing_supply
from perpool.trade import Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(17)]

OPEN_BPS, CLOSE_BPS = FEES["open_position_bps"], FEES["close_position_bps"]
MIN_FEE = FEES["min_fee_usd"]
SWAP_BPS = FEES["swap_bps"]
LP_MIN_BPS = FEES["liquidity_min_fee_bps"]
FUNDS = {"SOL": 50 * SOL, "ETH": 5 * ETH, "USDC": 50_000 * USDC, "USDT": 50_000 * USDT}


def schedule(size_usd: int, bps: int) -> Fraction:
    """DESIGN §4: max(minFee, tradingFee x size), unrounded."""
    return fee_exact(size_usd, bps, MIN_FEE)


def held_symbol(env: PoolEnv, market: Market) -> str:
    return symbol_of(env, market.collateral_mint)


def open_ix(
    env: PoolEnv, trader: Trader, market: Market, collateral: int, size: int
) -> Instruction:
    return trade.open_position_ix(
        env.client,
        trader.key,
        market,
        collateral_amount=collateral,
        size_usd=size,
        funding_account=trader.accounts[held_symbol(env, market)],
    )


def close_ix(env: PoolEnv, trader: Trader, market: Market, close_bps: int = BPS) -> Instruction:
    return trade.close_position_ix(
        env.client,
        trader.key,
        market,
        receiving_account=trader.accounts[held_symbol(env, market)],
        close_bps=close_bps,
    )


async def run(env: PoolEnv, trader: Trader, symbol: str, ixs: list[Instruction]) -> tuple[int, Any]:
    """Sends ``ixs`` signed by ``trader``; returns (tokens of ``symbol`` it lost, signature)."""
    (before,) = await token_amounts(env, [trader.accounts[symbol]])
    signature = await send(env, ixs, trader.wallet)
    (after,) = await token_amounts(env, [trader.accounts[symbol]])
    return before - after, signature


def world_price(env: PoolEnv, symbol: str) -> Fraction:
    return price_of(env.specs[symbol])


# ------------------------------------------------------------------------------------------
# Open and close in one transaction, every market
# ------------------------------------------------------------------------------------------

ROUND_TRIPS = {
    "long_sol": (2 * SOL, 1_000 * USD),
    "short_sol": (300 * USDC, 1_000 * USD),
    "long_eth": (ETH // 10, 1_500 * USD),
    "short_eth": (300 * USDT, 1_000 * USD),
    "long_ethsq": (300 * USDC, 1_000 * USD),
}


async def test_open_and_close_in_one_transaction_pay_both_fees(
    world: World, attack: Attack
) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    for key, (collateral, size) in ROUND_TRIPS.items():
        market = world.markets[key]
        symbol = held_symbol(env, market)
        async with attack.holds(f"open+close {key} in one transaction (size ${size // USD})"):
            lost, signature = await run(
                env,
                trader,
                symbol,
                [open_ix(env, trader, market, collateral, size), close_ix(env, trader, market)],
            )
            (opened,) = await event_data(env, signature, "PositionOpened")
            (closed,) = await event_data(env, signature, "PositionClosed")
            assert opened.fee_usd >= schedule(size, OPEN_BPS)
            assert closed.fee_usd >= schedule(size, CLOSE_BPS)
            owed = schedule(size, OPEN_BPS) + schedule(size, CLOSE_BPS)
            price = world_price(env, symbol)
            assert usd_exact(lost, env.specs[symbol].decimals, price) >= owed


# ------------------------------------------------------------------------------------------
# Splitting
# ------------------------------------------------------------------------------------------


async def test_closing_in_slices_pays_at_least_one_close(world: World, attack: Attack) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    market = world.markets["long_sol"]
    cases = (
        ("halves of a $999.999999 long", 5 * SOL, 999_999_999, (5_000, BPS)),
        ("ten slices of a $50 long (minimum fee each)", SOL // 10, 50 * USD, (1_000,) * 9 + (BPS,)),
        ("10 bps (minimum fee), then the rest of a $1000 long", 2 * SOL, 1_000 * USD, (10, BPS)),
    )
    for label, collateral, size, slices in cases:
        async with attack.holds(f"close in slices: {label}"):
            ixs = [open_ix(env, trader, market, collateral, size)]
            ixs += [close_ix(env, trader, market, bps) for bps in slices]
            lost, signature = await run(env, trader, "SOL", ixs)
            closes = await event_data(env, signature, "PositionClosed")
            assert sum(c.size_usd for c in closes) == size
            for piece in closes:
                assert piece.fee_usd >= schedule(piece.size_usd, CLOSE_BPS)
            paid = sum(c.fee_usd for c in closes)
            assert paid >= schedule(size, CLOSE_BPS)
            owed = schedule(size, OPEN_BPS) + sum(schedule(c.size_usd, CLOSE_BPS) for c in closes)
            assert usd_exact(lost, 9, world_price(env, "SOL")) >= owed


async def test_one_position_split_over_wallets_pays_the_minimum_fee_each(
    world: World, attack: Attack
) -> None:
    env = world.env
    wallets = await funded_traders(env, 4, USDC=1_000 * USDC)
    market = world.markets["short_sol"]
    async with attack.holds("a $100 short split over 4 wallets of $25 (minimum fee each)"):
        total_lost = 0
        for trader in wallets:
            lost, signature = await run(
                env,
                trader,
                "USDC",
                [open_ix(env, trader, market, 5 * USDC, 25 * USD), close_ix(env, trader, market)],
            )
            (opened,) = await event_data(env, signature, "PositionOpened")
            (closed,) = await event_data(env, signature, "PositionClosed")
            assert opened.fee_usd == closed.fee_usd == MIN_FEE
            total_lost += lost
        assert total_lost >= 4 * 2 * MIN_FEE > 2 * schedule(100 * USD, OPEN_BPS)


@pytest.mark.parametrize(
    ("key", "size", "expected"),
    [
        ("short_sol", 99_000_000, MIN_FEE),
        ("long_eth", 100_000_000, MIN_FEE),
        ("short_eth", 100_000_001, 100_001),
    ],
)
async def test_fee_at_the_minimum_fee_boundary(
    world: World, attack: Attack, key: str, size: int, expected: int
) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    market = world.markets[key]
    collateral = ETH // 100 if key == "long_eth" else 30 * 10**6
    async with attack.holds(f"open+close {key} of {size} USD units: fee {expected} each way"):
        _, signature = await run(
            env,
            trader,
            held_symbol(env, market),
            [open_ix(env, trader, market, collateral, size), close_ix(env, trader, market)],
        )
        (opened,) = await event_data(env, signature, "PositionOpened")
        (closed,) = await event_data(env, signature, "PositionClosed")
        assert opened.fee_usd == closed.fee_usd == expected
        assert expected >= schedule(size, OPEN_BPS)


async def test_collateral_churn_refunds_no_fee(world: World, attack: Attack) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    market = world.markets["short_eth"]
    size = 2_000 * USD
    async with attack.holds("open, add collateral, remove collateral, close a short ETH"):
        ixs = [
            open_ix(env, trader, market, 200 * USDT, size),
            trade.add_collateral_ix(
                env.client, trader.key, market, 100 * USDT, funding_account=trader.accounts["USDT"]
            ),
            trade.remove_collateral_ix(
                env.client,
                trader.key,
                market,
                150 * USD,
                receiving_account=trader.accounts["USDT"],
            ),
            close_ix(env, trader, market),
        ]
        lost, signature = await run(env, trader, "USDT", ixs)
        (closed,) = await event_data(env, signature, "PositionClosed")
        assert closed.fee_usd >= schedule(size, CLOSE_BPS)
        owed = schedule(size, OPEN_BPS) + schedule(size, CLOSE_BPS)
        assert usd_exact(lost, 6, world_price(env, "USDT")) >= owed


# ------------------------------------------------------------------------------------------
# Swaps
# ------------------------------------------------------------------------------------------


def swap_ix(env: PoolEnv, trader: Trader, src: str, dst: str, amount: int) -> Instruction:
    return trade.swap_ix(
        env.client,
        trader.key,
        env.pool,
        env.mint(src),
        env.mint(dst),
        amount,
        funding_account=trader.accounts[src],
        receiving_account=trader.accounts[dst],
    )


@pytest.mark.parametrize(
    ("a", "b", "amount"),
    [("USDC", "USDT", 10_000 * USDC), ("SOL", "ETH", 3 * SOL), ("ETH", "USDC", ETH // 3)],
)
async def test_a_to_b_to_a_swaps_pay_two_swap_fees(
    world: World, attack: Attack, a: str, b: str, amount: int
) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    async with attack.holds(f"swap {amount} {a} units to {b} and everything back"):
        (held_b,) = await token_amounts(env, [trader.accounts[b]])
        first = await send(env, [swap_ix(env, trader, a, b, amount)], trader.wallet)
        (got,) = await token_amounts(env, [trader.accounts[b]])
        second = await send(env, [swap_ix(env, trader, b, a, got - held_b)], trader.wallet)
        legs = [
            *(await event_data(env, first, "Swapped")),
            *(await event_data(env, second, "Swapped")),
        ]
        for leg in legs:
            gross = leg.amount_out + leg.fee_amount
            assert leg.fee_amount >= Fraction(gross * SWAP_BPS, BPS)
        back = legs[1].amount_out
        # Valued exactly, the round trip keeps two swap fees.
        keep = Fraction(BPS - SWAP_BPS, BPS) ** 2
        assert back <= amount * keep


async def test_tiny_swaps_pay_a_whole_unit_of_fee_or_are_refused(
    world: World, attack: Attack
) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    async with attack.holds("swap 10 USDC units to USDT: the 0.02-unit fee rounds up to 1"):
        signature = await send(env, [swap_ix(env, trader, "USDC", "USDT", 10)], trader.wallet)
        (leg,) = await event_data(env, signature, "Swapped")
        assert (leg.amount_out, leg.fee_amount) == (9, 1)
    await attack.rejected(
        "swap 1 USDC unit to USDT (the fee would take it all)",
        [swap_ix(env, trader, "USDC", "USDT", 1)],
        [trader.wallet],
        error="ZeroAmount",
        watch=trader.accounts.values(),
    )


# ------------------------------------------------------------------------------------------
# LP round trips
# ------------------------------------------------------------------------------------------


async def lp_round_trip(
    env: PoolEnv, trader: Trader, lp_account: Any, symbol: str, amount: int, pause: int
) -> tuple[int, list[Any]]:
    quote = await mirror_add(env, symbol, amount)
    add = await lp.add_liquidity_ix(
        env.client,
        trader.key,
        env.pool,
        env.mint(symbol),
        amount,
        funding_account=trader.accounts[symbol],
        lp_token_account=lp_account,
    )
    remove = await lp.remove_liquidity_ix(
        env.client,
        trader.key,
        env.pool,
        env.mint(symbol),
        quote.lp_amount,
        receiving_account=trader.accounts[symbol],
        lp_token_account=lp_account,
    )
    (before,) = await token_amounts(env, [trader.accounts[symbol]])
    if pause:
        signatures = [await send(env, [add], trader.wallet)]
        await env.advance(pause)
        signatures.append(await send(env, [remove], trader.wallet))
    else:
        signatures = [await send(env, [add, remove], trader.wallet)]
    (after,) = await token_amounts(env, [trader.accounts[symbol]])
    found = []
    for signature in signatures:
        found += await event_data(env, signature, "LiquidityAdded")
        found += await event_data(env, signature, "LiquidityRemoved")
    return before - after, found


@pytest.mark.parametrize(
    ("symbol", "amount", "pause"),
    [("USDC", 5_000 * USDC, 0), ("SOL", 7 * SOL, 0), ("ETH", ETH, 0), ("USDT", 3_000 * USDT, 2)],
)
async def test_lp_round_trips_pay_the_lp_fee_both_ways(
    world: World, attack: Attack, symbol: str, amount: int, pause: int
) -> None:
    env = world.env
    trader = await new_trader(env, **FUNDS)
    lp_account = await env.lp_account(trader.key)
    when = f"{pause} s apart" if pause else "in one transaction"
    async with attack.holds(f"deposit {amount} {symbol} units and withdraw them {when}"):
        lost, (added, removed) = await lp_round_trip(env, trader, lp_account, symbol, amount, pause)
        assert added.fee_amount >= Fraction(amount * LP_MIN_BPS, BPS)
        gross_out = removed.amount_out + removed.fee_amount
        assert removed.fee_amount >= Fraction(gross_out * LP_MIN_BPS, BPS)
        assert removed.lp_amount == added.lp_amount
        assert lost >= added.fee_amount + removed.fee_amount
        assert lost >= amount * (1 - Fraction(BPS - LP_MIN_BPS, BPS) ** 2)


# ------------------------------------------------------------------------------------------
# Self-liquidation and borrow fees, in a pool of their own
# ------------------------------------------------------------------------------------------

FRESH = (TokenSpec("SOL", 9, False, 100 * 10**8, -8), TokenSpec("USDC", 6, True, 1_000_000, -6))


async def test_self_liquidation_and_borrow_fees(world: World, attack: Attack) -> None:
    pool = await fresh_pool(world, "fees", FRESH, {"SOL": FEES, "USDC": FEES})
    await seed_liquidity(pool, SOL=1_000 * SOL, USDC=100_000 * USDC)
    market = Market.long(pool.pool, pool.mint("SOL"))
    closer, self_liquidator = await funded_traders(pool, 2, SOL=10 * SOL)
    size = 10_000 * USD
    # 20x at $100: the maintenance margin is 1%, the second step 0.5% (the world's ladder).
    await pool.client.send(
        [
            open_ix(pool, closer, market, 5 * SOL, size),
            open_ix(pool, self_liquidator, market, 5 * SOL, size),
        ],
        [closer.wallet, self_liquidator.wallet],
    )
    await post_price(pool, "SOL", 9_560_000_000)  # -4.4%: margin under 0.5% of size
    async with attack.holds("self-liquidation pays the close fee and no more than a close"):
        before = await token_amounts(
            pool, [closer.accounts["SOL"], self_liquidator.accounts["SOL"]]
        )
        liquidate = trade.liquidate_ix(
            pool.client,
            self_liquidator.key,
            market,
            self_liquidator.key,
            receiving_account=self_liquidator.accounts["SOL"],
            owner_receiving_account=self_liquidator.accounts["SOL"],
        )
        signature = await pool.client.send(
            [close_ix(pool, closer, market), liquidate], [closer.wallet, self_liquidator.wallet]
        )
        after = await token_amounts(pool, [closer.accounts["SOL"], self_liquidator.accounts["SOL"]])
        (closed,) = await event_data(pool, signature, "PositionClosed")
        (liquidated,) = await event_data(pool, signature, "PositionLiquidated")
        assert liquidated.size_usd == size
        assert liquidated.fee_usd == closed.fee_usd >= schedule(size, CLOSE_BPS)
        assert after[1] - before[1] <= after[0] - before[0]

    owner = await new_trader(pool, SOL=10 * SOL)
    await post_price(pool, "SOL", 100 * 10**8)
    fund = (await pool.custody("SOL")).insurance.balance
    assert fund > 0
    await send(pool, [open_ix(pool, owner, market, 2 * SOL, 1_000 * USD)], owner.wallet)
    await attack.rejected(
        "close 1 bp of a $1000 long: the $0.10 minimum fee is more than the slice's collateral",
        [close_ix(pool, owner, market, 1)],
        [owner.wallet],
        error="CloseTooSmall",
        watch=owner.accounts.values(),
        env=pool,
    )
    assert (await pool.custody("SOL")).insurance.balance == fund
    await send(pool, [close_ix(pool, owner, market)], owner.wallet)
    async with attack.holds("a long held 600 s pays at least utilization x rate x size x time"):
        signature = await send(
            pool, [open_ix(pool, owner, market, 2 * SOL, 1_000 * USD)], owner.wallet
        )
        (opened,) = await event_data(pool, signature, "PositionOpened")
        sol = await pool.custody("SOL")
        utilization = Fraction(sol.assets.locked, sol.assets.owned)
        hourly = Fraction(FEES["hourly_rate"], RATE_ONE)
        await pool.advance(600)
        position = trade.position_key(pool.client, market, owner.key)
        start = (await pool.client.fetch("Position", position)).open_time
        signature = await send(pool, [close_ix(pool, owner, market)], owner.wallet)
        (closed,) = await event_data(pool, signature, "PositionClosed")
        elapsed = await block_time(pool, signature) - start
        assert elapsed >= 600
        assert closed.borrow_fee_usd >= opened.size_usd * utilization * hourly * elapsed / 3_600
        assert closed.borrow_fee_usd > 0
        assert closed.fee_usd >= schedule(1_000 * USD, CLOSE_BPS)
        assert tokens_exact(closed.borrow_fee_usd, 9, price_of(FRESH[0])) > 0


async def test_a_large_deposit_pays_its_lp_fee_to_the_other_lps(
    world: World, attack: Attack
) -> None:
    """DESIGN §4: the LP fee is paid to the other LPs. A deposit ten times the pool moves the
    stable far from its target (a fee near the maximum); the LP tokens it mints must be worth no
    more than the deposit net of that fee, in the pool that keeps it."""
    pool = await fresh_pool(world, "whale", FRESH, {"SOL": FEES, "USDC": FEES})
    await seed_liquidity(pool, SOL=100 * SOL, USDC=10_000 * USDC)
    whale = await new_trader(pool, USDC=200_000 * USDC)
    whale_lp = await pool.lp_account(whale.key)
    amount = 200_000 * USDC
    sol_price, usdc_price = price_of(FRESH[0]), price_of(FRESH[1])

    async def lp_value(lp_amount: int) -> Fraction:
        sol, usdc = await pool.custody("SOL"), await pool.custody("USDC")
        value = usd_exact(sol.assets.owned, 9, sol_price) + usd_exact(
            usdc.assets.owned, 6, usdc_price
        )
        supply = pricing_supply(await lp_supply(pool))
        return lp_amount * value / supply

    async with attack.holds(
        "a deposit of 10x the pool: its LP tokens are worth the deposit less the fee"
    ):
        quote = await mirror_add(pool, "USDC", amount)
        assert quote.fee_bps > 4 * LP_MIN_BPS
        signature = await send(
            pool,
            [
                await lp.add_liquidity_ix(
                    pool.client,
                    whale.key,
                    pool.pool,
                    pool.mint("USDC"),
                    amount,
                    funding_account=whale.accounts["USDC"],
                    lp_token_account=whale_lp,
                )
            ],
            whale.wallet,
        )
        (added,) = await event_data(pool, signature, "LiquidityAdded")
        assert added.fee_amount >= Fraction(amount * quote.fee_bps, BPS)
        net = usd_exact(amount - added.fee_amount, 6, usdc_price)
        worth = await lp_value(added.lp_amount)
        assert worth <= net, f"the depositor got back ${float(worth - net) / USD:,.2f} of its fee"
        assert net - worth < USD // 100

    async with attack.holds("the same depositor withdraws at once: both LP fees are lost"):
        remove = await lp.remove_liquidity_ix(
            pool.client,
            whale.key,
            pool.pool,
            pool.mint("USDC"),
            added.lp_amount,
            receiving_account=whale.accounts["USDC"],
            lp_token_account=whale_lp,
        )
        signature = await send(pool, [remove], whale.wallet)
        (removed,) = await event_data(pool, signature, "LiquidityRemoved")
        (left,) = await token_amounts(pool, [whale.accounts["USDC"]])
        assert amount - left >= added.fee_amount + removed.fee_amount
