"""Class 14, rounding: every division rounds in the pool's favour.

A pool of its own with prices of odd digits (one with 15 significant digits, finer than the
9-decimal entry price) and mints of 9, 8 and 6 decimals. Each action is compared with the
exact rational value of DESIGN §4's formula (``Fraction``, no rounding at all): the trader or
LP never receives more than that value, the LP price never falls, and the program's numbers
equal ``perpool.quotes``' mirror of them. Dust is refused by name where it would round to
nothing; fifty tiny round trips (LP, swaps, collateral) never extract a unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import pytest
import pytest_asyncio
from adversarial_economics import (
    custody_states,
    event_data,
    fee_exact,
    fresh_pool,
    lp_supply,
    mirror_add,
    mirror_open,
    mirror_remove,
    mirror_swap,
    new_trader,
    pool_value_exact,
    price_of,
    seed_liquidity,
    send,
    token_amounts,
    tokens_exact,
    usd_exact,
)
from adversary import USD, Attack, World
from pool_env import PoolEnv, TokenSpec
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from trade_support import BPS, Trader

from perpool import lp, trade
from perpool.math import pricing_supply
from perpool.trade import Market

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.attack_class(14)]

TOKENS = (
    TokenSpec("A9", 9, False, 123_456_789_123_457, -12),  # $123.456789123457
    TokenSpec("C8", 8, False, 2_718_281_828, -6),  # $2,718.281828
    TokenSpec("D6", 6, False, 337_013, -6),  # $0.337013
    TokenSpec("S6", 6, True, 999_987, -6),  # $0.999987
)
SPECS = {t.symbol: t for t in TOKENS}
OPEN_BPS, CLOSE_BPS, SWAP_BPS = 7, 9, 13
CONFIG = {
    "open_position_bps": OPEN_BPS,
    "close_position_bps": CLOSE_BPS,
    "swap_bps": SWAP_BPS,
    "liquidity_min_fee_bps": 3,
    "liquidity_max_fee_bps": 30,
    "liquidity_fee_k_bps": 5_000,
    "protocol_share_bps": 3_333,
    "max_price_age_sec": 3_600,
    "max_initial_leverage": 50 * BPS,
    "max_leverage": 100 * BPS,
}
LIQUIDITY = {"A9": 1_000 * 10**9, "C8": 40 * 10**8, "D6": 300_000 * 10**6, "S6": 100_000 * 10**6}


@dataclass
class Rounding:
    pool: PoolEnv
    trader: Trader
    lp_account: Pubkey

    def price(self, symbol: str) -> Fraction:
        return price_of(SPECS[symbol])

    def long(self, symbol: str) -> Market:
        return Market.long(self.pool.pool, self.pool.mint(symbol))

    def short(self, symbol: str) -> Market:
        return Market.short(self.pool.pool, self.pool.mint(symbol), self.pool.mint("S6"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rnd(world: World) -> Rounding:
    pool = await fresh_pool(world, "rounding", TOKENS, {t.symbol: CONFIG for t in TOKENS})
    await seed_liquidity(pool, **LIQUIDITY)
    trader = await new_trader(
        pool, A9=100 * 10**9, C8=10 * 10**8, D6=100_000 * 10**6, S6=100_000 * 10**6
    )
    lp_account = await pool.lp_account(trader.key)
    await lp.add_liquidity(
        pool.client,
        trader.wallet,
        pool.pool,
        pool.mint("S6"),
        1_000 * 10**6,
        funding_account=trader.accounts["S6"],
        lp_token_account=lp_account,
    )
    return Rounding(pool, trader, lp_account)


async def exact_lp_price(pool: PoolEnv) -> Fraction:
    """Σ owned x price / LP supply with the locked LP (no positions stay open during the LP
    tests)."""
    states = await custody_states(pool)
    value = pool_value_exact(states, SPECS, {s: SPECS[s].price for s in SPECS})
    return value / pricing_supply(await lp_supply(pool))


async def send_batched(
    pool: PoolEnv, ixs: Sequence[Instruction], signer: Keypair, per_tx: int
) -> None:
    for start in range(0, len(ixs), per_tx):
        await send(pool, ixs[start : start + per_tx], signer)


# ------------------------------------------------------------------------------------------
# Liquidity
# ------------------------------------------------------------------------------------------


async def add_ix(rnd: Rounding, symbol: str, amount: int) -> Instruction:
    pool, me = rnd.pool, rnd.trader
    return await lp.add_liquidity_ix(
        pool.client,
        me.key,
        pool.pool,
        pool.mint(symbol),
        amount,
        funding_account=me.accounts[symbol],
        lp_token_account=rnd.lp_account,
    )


async def remove_ix(rnd: Rounding, symbol: str, lp_amount: int) -> Instruction:
    pool, me = rnd.pool, rnd.trader
    return await lp.remove_liquidity_ix(
        pool.client,
        me.key,
        pool.pool,
        pool.mint(symbol),
        lp_amount,
        receiving_account=me.accounts[symbol],
        lp_token_account=rnd.lp_account,
    )


def watched(rnd: Rounding) -> list[Pubkey]:
    return [*rnd.trader.accounts.values(), rnd.lp_account]


@pytest.mark.parametrize("symbol", list(SPECS))
async def test_one_unit_deposits_are_refused(rnd: Rounding, attack: Attack, symbol: str) -> None:
    # One base unit: the fee takes a whole unit (it rounds up), nothing is left to mint.
    await attack.rejected(
        f"add_liquidity of 1 base unit of {symbol}",
        [await add_ix(rnd, symbol, 1)],
        [rnd.trader.wallet],
        error="ZeroAmount",
        watch=watched(rnd),
        env=rnd.pool,
    )


@pytest.mark.parametrize("symbol", list(SPECS))
async def test_one_lp_unit_withdrawals(rnd: Rounding, attack: Attack, symbol: str) -> None:
    """One LP unit is worth about one USD unit: less than one base unit of C8 (after the fee, of
    S6), refused; a few units of A9 and D6, paid rounded down."""
    pool, me = rnd.pool, rnd.trader
    ix = await remove_ix(rnd, symbol, 1)
    if symbol in ("C8", "S6"):
        await attack.rejected(
            f"remove_liquidity of 1 LP unit for {symbol}",
            [ix],
            [me.wallet],
            error="ZeroAmount",
            watch=watched(rnd),
            env=pool,
        )
        return
    async with attack.holds(f"remove_liquidity of 1 LP unit for {symbol} pays at most its share"):
        lp_price = await exact_lp_price(pool)
        quote = await mirror_remove(pool, symbol, 1)
        (before,) = await token_amounts(pool, [me.accounts[symbol]])
        await send(pool, [ix], me.wallet)
        (after,) = await token_amounts(pool, [me.accounts[symbol]])
        received = after - before
        assert received == quote.amount_out > 0
        assert usd_exact(received, SPECS[symbol].decimals, rnd.price(symbol)) <= lp_price
        assert await exact_lp_price(pool) >= lp_price


# Deposits of the smallest amount worth at least this many USD units (one base unit less is
# worth fewer), and odd LP amounts withdrawn.
BOUNDARIES = {"A9": 1_000_000, "C8": 100_003, "D6": 1_000_001, "S6": 1_000_014}


def boundary_amount(symbol: str) -> int:
    unit_value = usd_exact(1, SPECS[symbol].decimals, price_of(SPECS[symbol]))
    amount = -(-Fraction(BOUNDARIES[symbol]) // unit_value)
    assert (
        usd_exact(amount - 1, SPECS[symbol].decimals, price_of(SPECS[symbol])) < BOUNDARIES[symbol]
    )
    return int(amount)


@pytest.mark.parametrize("symbol", list(SPECS))
async def test_deposit_and_withdrawal_never_pay_more_than_the_exact_share(
    rnd: Rounding, attack: Attack, symbol: str
) -> None:
    pool, me = rnd.pool, rnd.trader
    decimals, price = SPECS[symbol].decimals, rnd.price(symbol)
    amount = boundary_amount(symbol)
    async with attack.holds(f"add_liquidity of {amount} {symbol} at a USD-unit boundary"):
        lp_price = await exact_lp_price(pool)
        quote = await mirror_add(pool, symbol, amount)
        signature = await send(pool, [await add_ix(rnd, symbol, amount)], me.wallet)
        (event,) = await event_data(pool, signature, "LiquidityAdded")
        assert (event.lp_amount, event.fee_amount) == (quote.lp_amount, quote.fee_amount)
        assert event.fee_amount >= Fraction(amount * quote.fee_bps, BPS)
        after = await exact_lp_price(pool)
        # The LP tokens minted are worth no more than the tokens brought, at the new price.
        assert event.lp_amount * after <= usd_exact(amount, decimals, price)
        assert after >= lp_price

    lp_amount = 777_777
    async with attack.holds(f"remove_liquidity of {lp_amount} LP units for {symbol}"):
        lp_price = await exact_lp_price(pool)
        out = await mirror_remove(pool, symbol, lp_amount)
        (before,) = await token_amounts(pool, [me.accounts[symbol]])
        await send(pool, [await remove_ix(rnd, symbol, lp_amount)], me.wallet)
        (after_balance,) = await token_amounts(pool, [me.accounts[symbol]])
        received = after_balance - before
        assert received == out.amount_out
        assert usd_exact(received, decimals, price) <= lp_amount * lp_price
        assert out.fee_amount >= Fraction((received + out.fee_amount) * out.fee_bps, BPS)
        assert await exact_lp_price(pool) >= lp_price


@pytest.mark.parametrize(("symbol", "amount"), [("A9", 13_000), ("D6", 170), ("S6", 61)])
async def test_fifty_tiny_lp_round_trips_extract_nothing(
    rnd: Rounding, attack: Attack, symbol: str, amount: int
) -> None:
    pool, me = rnd.pool, rnd.trader
    async with attack.holds(f"50 x (add {amount} {symbol} units, remove what it minted)"):
        minted = (await mirror_add(pool, symbol, amount)).lp_amount
        assert 1 < minted < 2_000, minted
        lp_price = await exact_lp_price(pool)
        start = await token_amounts(pool, [me.accounts[symbol], rnd.lp_account])
        # Each trip withdraws one LP unit less than the first deposit minted (later deposits
        # may mint one unit less); the units left over are redeemed at the end.
        pair = [await add_ix(rnd, symbol, amount), await remove_ix(rnd, symbol, minted - 1)]
        await send_batched(pool, pair * 50, me.wallet, 8)
        middle = await token_amounts(pool, [me.accounts[symbol], rnd.lp_account])
        leftover = middle[1] - start[1]
        assert leftover >= 0
        if leftover:
            await send(pool, [await remove_ix(rnd, symbol, leftover)], me.wallet)
        end = await token_amounts(pool, [me.accounts[symbol], rnd.lp_account])
        assert end[1] == start[1]
        assert end[0] < start[0], f"50 round trips returned {end[0] - start[0]} units"
        assert await exact_lp_price(pool) >= lp_price


# ------------------------------------------------------------------------------------------
# Swaps
# ------------------------------------------------------------------------------------------


def swap_ix(rnd: Rounding, src: str, dst: str, amount: int) -> Instruction:
    pool, me = rnd.pool, rnd.trader
    return trade.swap_ix(
        pool.client,
        me.key,
        pool.pool,
        pool.mint(src),
        pool.mint(dst),
        amount,
        funding_account=me.accounts[src],
        receiving_account=me.accounts[dst],
    )


@pytest.mark.parametrize(
    ("src", "dst", "amount"),
    [("A9", "S6", 987_654_321), ("C8", "D6", 12_345), ("D6", "A9", 1_000_003), ("S6", "C8", 4_321)],
)
async def test_swap_pays_no_more_than_the_exact_value_less_the_fee(
    rnd: Rounding, attack: Attack, src: str, dst: str, amount: int
) -> None:
    pool, me = rnd.pool, rnd.trader
    async with attack.holds(f"swap {amount} {src} units to {dst}"):
        lp_price = await exact_lp_price(pool)
        quote = await mirror_swap(pool, src, dst, amount)
        before = await token_amounts(pool, [me.accounts[src], me.accounts[dst]])
        await send(pool, [swap_ix(rnd, src, dst, amount)], me.wallet)
        after = await token_amounts(pool, [me.accounts[src], me.accounts[dst]])
        received = after[1] - before[1]
        assert (before[0] - after[0], received) == (amount, quote.amount_out)
        value_in = usd_exact(amount, SPECS[src].decimals, rnd.price(src))
        exact_out = tokens_exact(value_in, SPECS[dst].decimals, rnd.price(dst))
        assert received <= exact_out * (BPS - SWAP_BPS) / BPS
        assert quote.fee_amount >= Fraction((received + quote.fee_amount) * SWAP_BPS, BPS)
        assert await exact_lp_price(pool) >= lp_price


@pytest.mark.parametrize(("src", "dst", "amount"), [("A9", "C8", 1), ("D6", "S6", 2)])
async def test_dust_swaps_are_refused(
    rnd: Rounding, attack: Attack, src: str, dst: str, amount: int
) -> None:
    await attack.rejected(
        f"swap {amount} {src} units to {dst} (worth less than one unit out)",
        [swap_ix(rnd, src, dst, amount)],
        [rnd.trader.wallet],
        error="ZeroAmount",
        watch=watched(rnd),
        env=rnd.pool,
    )


async def test_fifty_tiny_swap_round_trips_extract_nothing(rnd: Rounding, attack: Attack) -> None:
    pool, me = rnd.pool, rnd.trader
    amount = 30_001  # about a cent of D6 to S6 and back
    async with attack.holds(f"50 x (swap {amount} D6 units to S6 and back)"):
        out = (await mirror_swap(pool, "D6", "S6", amount)).amount_out
        back = (await mirror_swap(pool, "S6", "D6", out)).amount_out
        assert back < amount
        start = await token_amounts(pool, [me.accounts["D6"], me.accounts["S6"]])
        trip = [swap_ix(rnd, "D6", "S6", amount), swap_ix(rnd, "S6", "D6", out)]
        await send_batched(pool, trip * 50, me.wallet, 12)
        end = await token_amounts(pool, [me.accounts["D6"], me.accounts["S6"]])
        assert end[1] == start[1]
        assert end[0] == start[0] - 50 * (amount - back)


# ------------------------------------------------------------------------------------------
# Positions
# ------------------------------------------------------------------------------------------


def open_ix(rnd: Rounding, market: Market, collateral: int, size: int) -> Instruction:
    held = (
        "S6"
        if market.side == "short"
        else next(s for s in SPECS if rnd.pool.mint(s) == market.mint)
    )
    return trade.open_position_ix(
        rnd.pool.client,
        rnd.trader.key,
        market,
        collateral_amount=collateral,
        size_usd=size,
        funding_account=rnd.trader.accounts[held],
    )


def close_ix(rnd: Rounding, market: Market, close_bps: int = BPS) -> Instruction:
    return trade.close_position_ix(
        rnd.pool.client,
        rnd.trader.key,
        market,
        receiving_account=rnd.trader.accounts[collateral_of(rnd, market)],
        close_bps=close_bps,
    )


def collateral_of(rnd: Rounding, market: Market) -> str:
    return next(s for s in SPECS if rnd.pool.mint(s) == market.collateral_mint)


ROUND_TRIPS = [
    ("long", "A9", 1_234_567_891, 1_000_000_007),
    ("long", "C8", 3_333_333, 777_777_777),
    ("long", "D6", 99_999_999, 333_333_333),
    ("short", "A9", 123_456_789, 987_654_321),
    ("short", "C8", 77_777_777, 555_555_557),
    ("short", "D6", 55_555_555, 444_444_443),
]


@pytest.mark.parametrize(("side", "symbol", "collateral", "size"), ROUND_TRIPS)
async def test_open_and_close_at_one_price_returns_no_more_than_collateral_less_fees(
    rnd: Rounding, attack: Attack, side: str, symbol: str, collateral: int, size: int
) -> None:
    pool, me = rnd.pool, rnd.trader
    market = rnd.long(symbol) if side == "long" else rnd.short(symbol)
    held = collateral_of(rnd, market)
    decimals, price = SPECS[held].decimals, rnd.price(held)
    async with attack.holds(f"open+close {side} {symbol}: {collateral} units, size {size}"):
        quote = await mirror_open(pool, market, collateral, size)
        (before,) = await token_amounts(pool, [me.accounts[held]])
        signature = await send(
            pool, [open_ix(rnd, market, collateral, size), close_ix(rnd, market)], me.wallet
        )
        (after,) = await token_amounts(pool, [me.accounts[held]])
        (opened,) = await event_data(pool, signature, "PositionOpened")
        (closed,) = await event_data(pool, signature, "PositionClosed")
        assert (opened.price, opened.fee_usd, opened.collateral_usd, opened.locked_amount) == (
            quote.entry_price,
            quote.fee_usd,
            quote.collateral_usd,
            quote.locked_amount,
        )
        fee_open, fee_close = fee_exact(size, OPEN_BPS), fee_exact(size, CLOSE_BPS)
        assert fee_open <= opened.fee_usd < fee_open + 1
        assert fee_close <= closed.fee_usd < fee_close + 1
        # The entry price rounds against the trader; the collateral is credited at most its
        # value net of the fee; the lock covers at least what the pool may owe.
        oracle = rnd.price(symbol) * 10**9
        assert opened.price >= oracle if side == "long" else opened.price <= oracle
        assert opened.collateral_usd <= usd_exact(collateral, decimals, price) - fee_open
        owed = size - opened.collateral_usd if side == "long" else size
        assert opened.locked_amount >= tokens_exact(owed, decimals, price)
        received = after - before + collateral
        assert received == closed.payout_amount
        exact = tokens_exact(
            usd_exact(collateral, decimals, price) - fee_open - fee_close, decimals, price
        )
        assert received <= exact
        # ... and not by more than a few USD units of rounding.
        assert received >= exact - tokens_exact(6, decimals, price) - 2


@pytest.mark.parametrize(
    ("side", "symbol", "collateral", "size"),
    [("long", "A9", 2_000_000_001, 2_468_013_579), ("short", "D6", 333_333_333, 3_000_000_001)],
)
async def test_partial_closes_pay_no_more_than_one_close(
    rnd: Rounding, attack: Attack, side: str, symbol: str, collateral: int, size: int
) -> None:
    pool, me = rnd.pool, rnd.trader
    market = rnd.long(symbol) if side == "long" else rnd.short(symbol)
    held = collateral_of(rnd, market)
    decimals, price = SPECS[held].decimals, rnd.price(held)
    async with attack.holds(f"{side} {symbol} closed in slices of 1 bp, 3333 bp and the rest"):
        (before,) = await token_amounts(pool, [me.accounts[held]])
        signature = await send(
            pool,
            [
                open_ix(rnd, market, collateral, size),
                close_ix(rnd, market, 1),
                close_ix(rnd, market, 3_333),
                close_ix(rnd, market),
            ],
            me.wallet,
        )
        (after,) = await token_amounts(pool, [me.accounts[held]])
        (opened,) = await event_data(pool, signature, "PositionOpened")
        slices = await event_data(pool, signature, "PositionClosed")
        assert [s.size_usd for s in slices][:1] == [size // BPS]
        assert sum(s.size_usd for s in slices) == size
        for piece in slices:
            assert piece.fee_usd >= fee_exact(piece.size_usd, CLOSE_BPS)
        received = after - before + collateral
        assert received == sum(s.payout_amount for s in slices)
        one_close = tokens_exact(
            usd_exact(collateral, decimals, price)
            - fee_exact(size, OPEN_BPS)
            - fee_exact(size, CLOSE_BPS),
            decimals,
            price,
        )
        assert opened.fee_usd >= fee_exact(size, OPEN_BPS)
        assert received <= one_close


async def test_a_slice_that_rounds_to_nothing_is_refused(rnd: Rounding, attack: Attack) -> None:
    pool, me = rnd.pool, rnd.trader
    market = rnd.long("D6")
    # $0.009999 of size: 1 bp of it is less than one USD unit.
    await send(pool, [open_ix(rnd, market, 29_000, 9_999)], me.wallet)
    await attack.rejected(
        "close 1 bp of a $0.009999 long (the slice rounds to zero)",
        [close_ix(rnd, market, 1)],
        [me.wallet],
        error="InvalidCloseSize",
        watch=watched(rnd),
        env=pool,
    )
    await send(pool, [close_ix(rnd, market)], me.wallet)


# ------------------------------------------------------------------------------------------
# Collateral changes
# ------------------------------------------------------------------------------------------


def add_collateral_ix(rnd: Rounding, market: Market, amount: int) -> Instruction:
    return trade.add_collateral_ix(
        rnd.pool.client,
        rnd.trader.key,
        market,
        amount,
        funding_account=rnd.trader.accounts[collateral_of(rnd, market)],
    )


def remove_collateral_ix(rnd: Rounding, market: Market, usd: int) -> Instruction:
    return trade.remove_collateral_ix(
        rnd.pool.client,
        rnd.trader.key,
        market,
        usd,
        receiving_account=rnd.trader.accounts[collateral_of(rnd, market)],
    )


async def test_collateral_changes(rnd: Rounding, attack: Attack) -> None:
    pool, me = rnd.pool, rnd.trader
    positions = {
        "A9": (rnd.long("A9"), 5 * 10**9, 5_000 * USD),
        "C8": (rnd.long("C8"), 10**8, 20_000 * USD),
        "D6": (rnd.long("D6"), 1_000 * 10**6, 3_000 * USD),
        "S6": (rnd.short("C8"), 1_000 * 10**6, 10_000 * USD),
    }
    await send(pool, [open_ix(rnd, m, c, s) for m, c, s in positions.values()], me.wallet)

    await attack.rejected(
        "add_collateral of 1 A9 unit (worth less than one USD unit)",
        [add_collateral_ix(rnd, positions["A9"][0], 1)],
        [me.wallet],
        error="ZeroAmount",
        watch=watched(rnd),
        env=pool,
    )
    await attack.rejected(
        "remove_collateral of 1 USD unit from a C8 long (less than one C8 unit)",
        [remove_collateral_ix(rnd, positions["C8"][0], 1)],
        [me.wallet],
        error="ZeroAmount",
        watch=watched(rnd),
        env=pool,
    )

    for symbol, amount in (("A9", 987_654_321), ("S6", 12_345_679)):
        market = positions[symbol][0]
        decimals, price = SPECS[symbol].decimals, rnd.price(symbol)
        async with attack.holds(f"add {amount} {symbol} units of collateral, remove their credit"):
            (before,) = await token_amounts(pool, [me.accounts[symbol]])
            signature = await send(pool, [add_collateral_ix(rnd, market, amount)], me.wallet)
            (added,) = await event_data(pool, signature, "CollateralChanged")
            credited = added.collateral_usd_delta
            assert credited <= usd_exact(amount, decimals, price) < credited + 1
            signature = await send(pool, [remove_collateral_ix(rnd, market, credited)], me.wallet)
            (removed,) = await event_data(pool, signature, "CollateralChanged")
            assert removed.amount <= tokens_exact(credited, decimals, price)
            (after,) = await token_amounts(pool, [me.accounts[symbol]])
            assert after == before - amount + removed.amount <= before

    for symbol, amount in (("D6", 3), ("S6", 2)):
        market = positions[symbol][0]
        async with attack.holds(
            f"50 x (add {amount} {symbol} units of collateral, remove $0.000001)"
        ):
            (before,) = await token_amounts(pool, [me.accounts[symbol]])
            position_before = await pool.client.fetch(
                "Position", trade.position_key(pool.client, market, me.key)
            )
            trip = [add_collateral_ix(rnd, market, amount), remove_collateral_ix(rnd, market, 1)]
            await send_batched(pool, trip * 50, me.wallet, 12)
            (after,) = await token_amounts(pool, [me.accounts[symbol]])
            position = await pool.client.fetch(
                "Position", trade.position_key(pool.client, market, me.key)
            )
            # Each trip credits 1 USD unit and pays back at most its worth: the pool keeps
            # a unit every time.
            assert position.collateral_usd == position_before.collateral_usd
            assert after < before
            assert position.collateral_amount - position_before.collateral_amount == before - after

    await send(pool, [close_ix(rnd, m) for m, _, _ in positions.values()], me.wallet)
