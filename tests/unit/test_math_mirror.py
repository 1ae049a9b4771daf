"""Pure tests of the Python mirror of the program's money math (no chain).

Three layers:

1. The Rust ``#[cfg(test)]`` vectors of ``programs/perpool/src/math/*.rs``, translated one to
   one (same inputs, same expected numbers and errors), so both sides are pinned to the same
   values. The Rust property tests are translated too, over the same deterministic value sets
   (``SAMPLE_U64S`` and the same LCG as ``math/test_values.rs``).
2. The DESIGN §4 seed examples through the business quotes (:mod:`perpool.quotes`).
3. Quote scenarios whose expected numbers were produced by the program's own Rust code
   (``Position::quote_open`` etc. compiled on the host), plus rounding-direction properties of
   the quotes and the anchorpy adapters.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from anchorpy import Coder

from perpool import quotes as q
from perpool.math import (
    BPS_DENOMINATOR,
    I32_MAX,
    I32_MIN,
    INDEX_ONE,
    LOCKED_LP_SUPPLY,
    LP_DECIMALS,
    MAX_PRICE_IMPACT,
    MAX_STEPS,
    PRICE_DECIMALS,
    RATE_ONE,
    SECONDS_PER_HOUR,
    U64_MAX,
    U128_MAX,
    USD_DECIMALS,
    USD_ONE,
    BpsSplit,
    CloseAmounts,
    DiscountSplit,
    FeeSplit,
    MathError,
    MathErrorKind,
    OraclePrice,
    PayoffFn,
    Pnl,
    RangeError,
    Side,
    Step,
    Valuation,
    _scale_pow10,
    accrue_funding,
    accrue_index,
    apply_impact,
    borrow_fee_usd,
    close_amounts,
    custody_value_usd,
    div_pow10_ceil,
    div_pow10_floor,
    entry_price_9dp,
    exit_price_9dp,
    fee_tokens,
    fee_usd,
    fee_usd_with_minimum,
    funding_parts,
    funding_rate,
    funding_usd,
    hourly_borrow_rate,
    is_liquidatable,
    isqrt,
    leverage_bps,
    liquidation_price,
    liquidation_step,
    liquidity_fee_bps,
    lp_to_mint,
    lp_to_mint_after_fee,
    lp_token_price_usd,
    maintenance_margin_bps_for_max_leverage,
    maintenance_margin_usd,
    margin_usd,
    max_profit_usd,
    mul_div_ceil,
    mul_div_ceil_u64,
    mul_div_floor,
    mul_div_floor_u64,
    mul_pow10,
    partial_close,
    payoff_price,
    position_pnl,
    pow10,
    price_impact,
    price_within_confidence,
    pricing_supply,
    ratio_bps,
    split_bps_ceil,
    split_bps_floor,
    split_discount,
    split_fee,
    step_discount_bps,
    step_threshold_usd,
    steps_are_valid,
    to_u64,
    token_to_usd_ceil,
    token_to_usd_floor,
    usd_for_lp,
    usd_to_token_ceil,
    usd_to_token_ceil_saturating,
    usd_to_token_floor,
    usd_to_token_floor_saturating,
    utilization_ceil,
    utilization_floor,
)
from perpool.program import account_discriminator, load_idl

OVERFLOW = MathErrorKind.OVERFLOW
DIV_ZERO = MathErrorKind.DIVISION_BY_ZERO
INVALID = MathErrorKind.INVALID_INPUT
USD = USD_ONE
LONG, SHORT = Side.LONG, Side.SHORT

# --- deterministic inputs (math/test_values.rs) ------------------------------------------------

SAMPLE_U64S: tuple[int, ...] = (
    0,
    1,
    2,
    3,
    7,
    9,
    10,
    99,
    100,
    999,
    999_999,
    1_000_000,
    1_000_001,
    123_456_789,
    1_000_000_000,
    4_294_967_296,
    1_000_000_000_007,
    999_999_999_999_999,
    1_000_000_000_000_000_000,
    U64_MAX // 3,
    U64_MAX - 1,
    U64_MAX,
)


def pseudo_random_u64s(count: int, seed: int) -> list[int]:
    """The Rust LCG of ``test_values.rs`` bit for bit (wrapping u64 arithmetic)."""
    state, out = seed, []
    for _ in range(count):
        state = (state * 6_364_136_223_846_793_005 + 1_442_695_040_888_963_407) & U64_MAX
        shift = (state >> 58) & 63
        out.append((state ^ (state >> 29)) >> shift)
    return out


@contextmanager
def raises_math(kind: MathErrorKind) -> Iterator[None]:
    with pytest.raises(MathError) as info:
        yield
    assert info.value.kind is kind


@contextmanager
def raises_program(name: str) -> Iterator[None]:
    """The quote fails the way the program would (``PerpoolError`` variant name)."""
    with pytest.raises(q.PROGRAM_ERRORS) as info:
        yield
    error = info.value
    assert isinstance(error, (q.QuoteError, MathError))
    assert error.program_error == name


def test_pseudo_random_matches_rust_generator() -> None:
    # Printed by `math/test_values.rs` itself (compiled on the host).
    assert pseudo_random_u64s(6, 7) == [
        4_236_661_119,
        7,
        58,
        38_385_658_910_571,
        37_489_576_791_956,
        9_974_297_146_757_599,
    ]
    assert pseudo_random_u64s(3, 41) == [251_334_423_464_401, 3_349, 813_203_740_678]
    assert len(SAMPLE_U64S) == 22


# --- constants (math/mod.rs) -------------------------------------------------------------------


def test_constants() -> None:
    assert (USD_DECIMALS, USD_ONE, BPS_DENOMINATOR) == (6, 1_000_000, 10_000)
    assert (RATE_ONE, PRICE_DECIMALS, LP_DECIMALS, SECONDS_PER_HOUR) == (10**9, 9, 6, 3_600)
    assert INDEX_ONE == 3_600_000_000_000  # borrow.rs: RATE_ONE * SECONDS_PER_HOUR


def test_program_error_names() -> None:
    # error.rs `From<MathError> for PerpoolError`: only DivisionByZero keeps its name.
    assert MathError(DIV_ZERO).program_error == "DivisionByZero"
    assert MathError(OVERFLOW).program_error == "MathOverflow"
    assert MathError(INVALID).program_error == "InvalidCalculationInput"
    assert q.QuoteError("ZeroAmount").program_error == "ZeroAmount"


# --- checked.rs --------------------------------------------------------------------------------


def test_mul_div_exact_and_rounding() -> None:
    assert mul_div_floor(10, 10, 4) == 25
    assert mul_div_ceil(10, 10, 4) == 25
    assert mul_div_floor(10, 1, 3) == 3
    assert mul_div_ceil(10, 1, 3) == 4
    assert mul_div_floor(0, 5, 3) == 0
    assert mul_div_ceil(0, 5, 3) == 0


def test_mul_div_errors() -> None:
    with raises_math(DIV_ZERO):
        mul_div_floor(1, 1, 0)
    with raises_math(DIV_ZERO):
        mul_div_ceil(1, 1, 0)
    with raises_math(OVERFLOW):
        mul_div_floor(U128_MAX, 2, 2)
    with raises_math(OVERFLOW):
        mul_div_ceil(U128_MAX, 2, 2)
    assert mul_div_ceil(U128_MAX, 1, 2) == U128_MAX // 2 + 1
    with raises_math(OVERFLOW):
        mul_div_floor_u64(U64_MAX, 2, 1)
    assert mul_div_floor_u64(U64_MAX, U64_MAX, U64_MAX) == U64_MAX
    # The divisor is checked before the product (Rust order): zero wins over overflow.
    with raises_math(DIV_ZERO):
        mul_div_floor(U128_MAX, 2, 0)


def test_to_u64_never_truncates() -> None:
    assert to_u64(U64_MAX) == U64_MAX
    with raises_math(OVERFLOW):
        to_u64(U64_MAX + 1)


def test_pow10_bounds() -> None:
    assert pow10(0) == 1
    assert pow10(38) == 10**38
    with raises_math(OVERFLOW):
        pow10(39)
    assert mul_pow10(0, 1000) == 0
    with raises_math(OVERFLOW):
        mul_pow10(1, 39)
    assert div_pow10_floor(U128_MAX, 39) == 0
    assert div_pow10_ceil(U128_MAX, 39) == 1
    assert div_pow10_ceil(0, 39) == 0
    assert div_pow10_ceil(U128_MAX, 38) == U128_MAX // 10**38 + 1
    # scale_pow10 with i64 extremes (Rust clamps the shift to u32).
    with raises_math(OVERFLOW):
        _scale_pow10(5, 2**63 - 1, ceil=False)
    assert _scale_pow10(5, -(2**63), ceil=True) == 1
    assert _scale_pow10(1234, -2, ceil=False) == 12
    assert _scale_pow10(1234, -2, ceil=True) == 13
    assert _scale_pow10(12, 2, ceil=True) == 1200


def test_property_floor_le_ceil_within_one() -> None:
    values = list(SAMPLE_U64S) + pseudo_random_u64s(64, 7)
    divisors = [c for c in values if c != 0][::3]
    for a in values:
        for b in values:
            p = a * b
            for c in divisors:
                lo, hi = mul_div_floor(a, b, c), mul_div_ceil(a, b, c)
                assert lo == p // c
                assert hi - lo == (1 if p % c else 0)


# --- price.rs ----------------------------------------------------------------------------------

SOL = OraclePrice(15_025, -2)  # $150.25
SOL_DECIMALS = 9
USDC_DECIMALS = 6


def test_scale_to_exponent_both_directions() -> None:
    p = SOL.scale_to_exponent_floor(-9)
    assert (p.price, p.exponent) == (150_250_000_000, -9)
    p = SOL.scale_to_exponent_floor(0)
    assert (p.price, p.exponent) == (150, 0)
    p = SOL.scale_to_exponent_ceil(0)
    assert (p.price, p.exponent) == (151, 0)
    assert OraclePrice(15, 1).scale_to_exponent_floor(-2).price == 15_000
    assert OraclePrice(15_025, -2).scale_to_exponent_ceil(1).price == 16
    with raises_math(OVERFLOW):
        OraclePrice(1, 0).scale_to_exponent_floor(-20)
    assert OraclePrice(5, I32_MIN).scale_to_exponent_floor(I32_MAX).price == 0
    assert OraclePrice(5, I32_MIN).scale_to_exponent_ceil(I32_MAX).price == 1
    assert OraclePrice(0, I32_MAX).scale_to_exponent_ceil(I32_MIN).price == 0


def test_price_9dp_round_trip() -> None:
    assert SOL.to_price_9dp_floor() == 150_250_000_000
    assert SOL.to_price_9dp_ceil() == 150_250_000_000
    fine = OraclePrice(1_234_567_891_234, -12)
    assert fine.to_price_9dp_floor() == 1_234_567_891
    assert fine.to_price_9dp_ceil() == 1_234_567_892
    assert OraclePrice(3, 2).to_price_9dp_floor() == 300_000_000_000
    assert OraclePrice.from_price_9dp(1).exponent == -PRICE_DECIMALS
    assert OraclePrice.from_price_9dp(150_250_000_000) == SOL
    with raises_math(OVERFLOW):
        OraclePrice(U64_MAX, 0).to_price_9dp_floor()


def test_comparisons_by_value() -> None:
    assert OraclePrice(1, 0) == OraclePrice(10, -1)
    assert OraclePrice(15_026, -2) > SOL
    assert OraclePrice(150_249_999_999, -9) < SOL
    assert OraclePrice(1, 30) > OraclePrice(U64_MAX, 0)
    assert OraclePrice(U64_MAX, -30) < OraclePrice(1, -10)
    assert OraclePrice(U64_MAX, -19) > OraclePrice(1, 0)
    assert OraclePrice(0, 30) < OraclePrice(1, -30)
    assert OraclePrice(0, 30) == OraclePrice(0, -30)
    assert SOL.max_value(OraclePrice(151, 0)).price == 151
    assert SOL.min_value(OraclePrice(151, 0)).price == 15_025
    # Equal values hash alike (usable as dict keys / in sets).
    assert hash(OraclePrice(1, 0)) == hash(OraclePrice(10, -1)) == hash(OraclePrice(1000, -3))
    assert hash(OraclePrice(0, 30)) == hash(OraclePrice(0, -30))
    assert OraclePrice(5, 0) <= OraclePrice(50, -1) <= OraclePrice(5, 0)
    assert OraclePrice(5, 0) >= OraclePrice(49, -1)


def test_token_to_usd_examples() -> None:
    assert token_to_usd_floor(2_000_000_000, SOL_DECIMALS, SOL) == 300_500_000
    assert token_to_usd_floor(1, SOL_DECIMALS, SOL) == 0
    assert token_to_usd_ceil(1, SOL_DECIMALS, SOL) == 1
    usdc = OraclePrice(100_000_000, -8)
    assert token_to_usd_floor(123_456_789, USDC_DECIMALS, usdc) == 123_456_789
    assert token_to_usd_floor(3, 0, OraclePrice(15, 1)) == 450_000_000
    with raises_math(OVERFLOW):
        token_to_usd_floor(U64_MAX, 0, OraclePrice(U64_MAX, 0))


def test_usd_to_token_examples() -> None:
    assert usd_to_token_floor(300_500_000, SOL_DECIMALS, SOL) == 2_000_000_000
    assert usd_to_token_ceil(300_500_000, SOL_DECIMALS, SOL) == 2_000_000_000
    assert usd_to_token_floor(1_000_000, SOL_DECIMALS, SOL) == 6_655_574
    assert usd_to_token_ceil(1_000_000, SOL_DECIMALS, SOL) == 6_655_575
    assert usd_to_token_floor(450_000_000, 0, OraclePrice(15, 1)) == 3
    huge = OraclePrice(U64_MAX, 40)
    assert usd_to_token_floor(U64_MAX, 0, huge) == 0
    assert usd_to_token_ceil(U64_MAX, 0, huge) == 1
    assert usd_to_token_ceil(0, 0, huge) == 0
    with raises_math(OVERFLOW):
        usd_to_token_floor(U64_MAX, 18, OraclePrice(1, -30))
    with raises_math(DIV_ZERO):
        usd_to_token_floor(1, 9, OraclePrice(0, -2))


def test_saturating_conversions_for_capped_amounts() -> None:
    crashed = OraclePrice(1, -8)
    with raises_math(OVERFLOW):
        usd_to_token_ceil(10_000_000_000, SOL_DECIMALS, crashed)
    assert usd_to_token_ceil_saturating(10_000_000_000, SOL_DECIMALS, crashed) == U64_MAX
    assert usd_to_token_floor_saturating(10_000_000_000, SOL_DECIMALS, crashed) == U64_MAX
    assert usd_to_token_floor_saturating(1_000_000, SOL_DECIMALS, SOL) == 6_655_574
    assert usd_to_token_ceil_saturating(1_000_000, SOL_DECIMALS, SOL) == 6_655_575
    with raises_math(DIV_ZERO):
        usd_to_token_floor_saturating(1, 9, OraclePrice(0, -2))


def test_confidence_limit_is_inclusive() -> None:
    assert price_within_confidence(15_025, 150, 100) == (150 * 10_000 <= 100 * 15_025)
    assert price_within_confidence(1_000_000, 10_000, 100)
    assert not price_within_confidence(1_000_000, 10_001, 100)
    assert price_within_confidence(1_000_000, 0, 0)
    assert not price_within_confidence(1_000_000, 1, 0)
    assert not price_within_confidence(0, 0, 10_000)
    assert price_within_confidence(U64_MAX, U64_MAX, 10_000)
    assert not price_within_confidence(U64_MAX - 1, U64_MAX, 10_000)


def _try(fn: Callable[[], int]) -> int | None:
    try:
        return fn()
    except MathError:
        return None


def test_property_conversion_rounding_directions() -> None:
    prices = [
        SOL,
        OraclePrice(100_000_000, -8),
        OraclePrice(6_543_210_987, -5),
        OraclePrice(15, 1),
        OraclePrice(1, -12),
        OraclePrice(99_999, -3),
    ]
    amounts = list(SAMPLE_U64S) + pseudo_random_u64s(80, 11)
    for price in prices:
        for decimals in (0, 6, 8, 9, 18):
            for x in amounts:
                lo = _try(lambda: token_to_usd_floor(x, decimals, price))  # noqa: B023
                hi = _try(lambda: token_to_usd_ceil(x, decimals, price))  # noqa: B023
                if lo is not None and hi is not None:
                    assert lo <= hi <= lo + 1
                    back = _try(lambda: usd_to_token_floor(lo, decimals, price))  # noqa: B023
                    assert back is None or back <= x
                    back_up = _try(lambda: usd_to_token_ceil(hi, decimals, price))  # noqa: B023
                    assert back_up is None or back_up >= x
                t = _try(lambda: usd_to_token_floor(x, decimals, price))  # noqa: B023
                if t is not None:
                    u = _try(lambda: token_to_usd_floor(t, decimals, price))  # noqa: B023
                    assert u is None or u <= x
                    t_up = usd_to_token_ceil(x, decimals, price)
                    assert t <= t_up <= t + 1


# --- fees.rs -----------------------------------------------------------------------------------


def test_fee_examples() -> None:
    assert fee_usd(1_000_000_000, 10) == 1_000_000
    assert fee_usd(1, 10) == 1
    assert fee_usd(0, 10) == 0
    assert fee_usd(1_000, 0) == 0
    assert fee_tokens(333, 30) == 1
    assert fee_tokens(10_000, 30) == 30
    with raises_math(OVERFLOW):
        fee_usd(U64_MAX, 20_000)
    assert fee_usd_with_minimum(1_000_000, 10, 5_000) == 5_000
    assert fee_usd_with_minimum(1_000_000_000, 10, 5_000) == 1_000_000


def test_split_fee_sums_exactly() -> None:
    assert split_fee(101, 5_000) == FeeSplit(lp_share=51, protocol_share=50)
    assert split_fee(101, 10_000) == FeeSplit(lp_share=0, protocol_share=101)
    assert split_fee(101, 0) == FeeSplit(lp_share=101, protocol_share=0)
    with raises_math(INVALID):
        split_fee(101, 10_001)
    for fee in SAMPLE_U64S:
        s = split_fee(fee, 2_500)
        assert s.lp_share + s.protocol_share == fee


def test_property_fee_never_under_exact() -> None:
    sizes = list(SAMPLE_U64S) + pseudo_random_u64s(100, 3)
    for size in sizes:
        for bps in (0, 1, 3, 6, 10, 25, 70, 100, 9_999, 10_000):
            fee = fee_usd(size, bps)
            exact_num = size * bps
            assert exact_num <= fee * 10_000 < exact_num + 10_000
            half = size // 2
            assert fee_usd(half, bps) + fee_usd(size - half, bps) >= fee


# --- borrow.rs ---------------------------------------------------------------------------------

HOURLY_0_01_PCT = 100_000  # 0.01 % in 1e9 units
SIZE_1000_USD = 1_000_000_000


def test_seed_borrow_fee_is_five_cents_per_hour() -> None:
    u = utilization_ceil(500, 1_000)
    assert u == 500_000_000
    assert utilization_floor(500, 1_000) == u
    rate = hourly_borrow_rate(u, 0, HOURLY_0_01_PCT, 0, RATE_ONE)
    assert rate == 50_000
    index0 = 1_000_000_000
    index1 = accrue_index(index0, rate, 3_600)
    assert borrow_fee_usd(SIZE_1000_USD, index1, index0) == 50_000  # $0.05
    index2 = accrue_index(index1, rate, 3_600)
    assert borrow_fee_usd(SIZE_1000_USD, index2, index0) == 100_000


def test_accrual_idempotent_and_splittable() -> None:
    rate = 50_000
    assert accrue_index(777, rate, 0) == 777
    assert accrue_index(777, 0, 3_600) == 777
    once = accrue_index(0, rate, 3_600)
    assert accrue_index(accrue_index(0, rate, 1_800), rate, 1_800) == once
    assert once == 180_000_000
    # Accruing every second gives exactly the same index: cranking cannot inflate fees.
    by_seconds = 0
    for _ in range(3_600):
        by_seconds = accrue_index(by_seconds, rate, 1)
    assert by_seconds == once
    with raises_math(OVERFLOW):
        accrue_index(U128_MAX, 1, 3_600)


def test_utilization_edges() -> None:
    assert utilization_floor(0, 0) == 0
    assert utilization_ceil(0, 0) == 0
    assert utilization_floor(1, 3) == 333_333_333
    assert utilization_ceil(1, 3) == 333_333_334
    assert utilization_ceil(U64_MAX, U64_MAX) == RATE_ONE
    with raises_math(INVALID):
        utilization_floor(2, 1)


def test_rate_curve_segments() -> None:
    base, s1, s2, opt = 10_000, 100_000, 1_000_000, 800_000_000
    assert hourly_borrow_rate(0, base, s1, s2, opt) == 10_000
    assert hourly_borrow_rate(400_000_000, base, s1, s2, opt) == 60_000
    assert hourly_borrow_rate(opt, base, s1, s2, opt) == 110_000
    assert hourly_borrow_rate(900_000_000, base, s1, s2, opt) == 610_000
    assert hourly_borrow_rate(RATE_ONE, base, s1, s2, opt) == 1_110_000
    assert hourly_borrow_rate(RATE_ONE, 0, s1, s2, RATE_ONE) == s1
    assert hourly_borrow_rate(0, 0, s1, s2, 0) == s1
    assert hourly_borrow_rate(500_000_000, 0, s1, s2, 0) == s1 + s2 // 2
    assert hourly_borrow_rate(1, 0, 1, 0, 3) == 1
    with raises_math(INVALID):
        hourly_borrow_rate(RATE_ONE + 1, base, s1, s2, opt)
    with raises_math(INVALID):
        hourly_borrow_rate(0, 0, s1, s2, RATE_ONE + 1)
    with raises_math(OVERFLOW):
        hourly_borrow_rate(RATE_ONE, U64_MAX, 1, 0, RATE_ONE)


def test_borrow_fee_edges() -> None:
    assert borrow_fee_usd(SIZE_1000_USD, 5, 5) == 0
    with raises_math(INVALID):
        borrow_fee_usd(SIZE_1000_USD, 4, 5)
    assert borrow_fee_usd(1_000_000, 1, 0) == 1
    with raises_math(OVERFLOW):
        borrow_fee_usd(U64_MAX, U128_MAX, 0)


def test_property_monotone_rate_and_fee_not_under_exact() -> None:
    base, s1, s2, opt = 1_000, 123_457, 9_876_543, 750_000_000
    last = 0
    for u in [*range(0, RATE_ONE + 1, 7_654_321), RATE_ONE]:
        r = hourly_borrow_rate(u, base, s1, s2, opt)
        assert r >= last
        last = r
    for size in pseudo_random_u64s(200, 5):
        for delta in (1, 7, 50_000, 999_999_999, 1_000_000_001):
            fee = borrow_fee_usd(size, delta, 0)
            exact = delta * size
            assert exact <= fee * INDEX_ONE < exact + INDEX_ONE


# --- pnl.rs ------------------------------------------------------------------------------------

P150, P180, P120 = 150_000_000_000, 180_000_000_000, 120_000_000_000
SIZE_100 = 100_000_000


def test_long_and_short_twenty_percent() -> None:
    assert position_pnl(LONG, P150, P180, SIZE_100) == Pnl(20_000_000, 0)
    assert position_pnl(LONG, P150, P120, SIZE_100) == Pnl(0, 20_000_000)
    assert position_pnl(SHORT, P150, P120, SIZE_100) == Pnl(20_000_000, 0)
    assert position_pnl(SHORT, P150, P180, SIZE_100) == Pnl(0, 20_000_000)
    assert position_pnl(LONG, P150, P150, SIZE_100) == Pnl(0, 0)
    assert position_pnl(SHORT, P150, P150, SIZE_100) == Pnl(0, 0)


def test_pnl_rounding_and_errors() -> None:
    assert position_pnl(LONG, 3, 4, 1_000_000) == Pnl(333_333, 0)
    assert position_pnl(LONG, 3, 2, 1_000_000) == Pnl(0, 333_334)
    assert position_pnl(SHORT, 3, 2, 1_000_000) == Pnl(333_333, 0)
    assert position_pnl(SHORT, 3, 4, 1_000_000) == Pnl(0, 333_334)
    assert position_pnl(LONG, P150, 0, SIZE_100) == Pnl(0, SIZE_100)
    with raises_math(DIV_ZERO):
        position_pnl(LONG, 0, P150, SIZE_100)
    with raises_math(OVERFLOW):
        position_pnl(SHORT, 1, U64_MAX, U64_MAX)


def test_entry_and_exit_prices_round_against_trader() -> None:
    p = OraclePrice(1_234_567_891_234, -12)
    assert entry_price_9dp(LONG, p) == 1_234_567_892
    assert exit_price_9dp(LONG, p) == 1_234_567_891
    assert entry_price_9dp(SHORT, p) == 1_234_567_891
    assert exit_price_9dp(SHORT, p) == 1_234_567_892
    for side in (LONG, SHORT):
        entry, exit_ = entry_price_9dp(side, p), exit_price_9dp(side, p)
        assert position_pnl(side, entry, exit_, SIZE_100).profit_usd == 0


def test_property_pnl_rounding_direction() -> None:
    prices = [p for p in list(SAMPLE_U64S) + pseudo_random_u64s(30, 17) if p != 0]
    sizes = [*pseudo_random_u64s(12, 23), 0, 1, SIZE_100]
    for entry in prices:
        for exit_ in prices[::2]:
            for size in sizes:
                exact_num = size * abs(entry - exit_)
                results = {}
                for side in (LONG, SHORT):
                    try:
                        r = position_pnl(side, entry, exit_, size)
                    except MathError:
                        continue
                    results[side] = r
                    assert r.profit_usd == 0 or r.loss_usd == 0
                    assert r.profit_usd * entry <= exact_num
                    assert r.loss_usd == 0 or r.loss_usd * entry >= exact_num
                if len(results) == 2:
                    lo, sh = results[LONG], results[SHORT]
                    assert lo.profit_usd == 0 or sh.profit_usd == 0
                    assert abs(lo.profit_usd - sh.loss_usd) <= 1
                    assert abs(sh.profit_usd - lo.loss_usd) <= 1


# --- liquidation.rs ----------------------------------------------------------------------------

MAX_LEVERAGE_250X = 2_500_000


def test_maintenance_from_max_leverage() -> None:
    assert maintenance_margin_bps_for_max_leverage(MAX_LEVERAGE_250X) == 40
    assert maintenance_margin_bps_for_max_leverage(1_000_000) == 100
    assert maintenance_margin_bps_for_max_leverage(3_000_000) == 34
    with raises_math(DIV_ZERO):
        maintenance_margin_bps_for_max_leverage(0)


def test_position_at_250x_is_exactly_at_the_limit() -> None:
    mm = maintenance_margin_bps_for_max_leverage(MAX_LEVERAGE_250X)
    size, collateral = 250 * USD, USD
    assert leverage_bps(size, margin_usd(collateral, 0, 0, 0)) == MAX_LEVERAGE_250X
    assert maintenance_margin_usd(size, mm) == collateral
    assert not is_liquidatable(collateral, 0, 0, 0, size, mm)
    assert is_liquidatable(collateral, 0, 1, 0, size, mm)
    assert is_liquidatable(collateral, 0, 0, 1, size, mm)
    assert leverage_bps(size, margin_usd(collateral - 1, 0, 0, 0)) > MAX_LEVERAGE_250X
    assert is_liquidatable(collateral - 1, 0, 0, 0, size, mm)


def test_threshold_boundary_is_strict() -> None:
    size, mm = 1_000 * USD, 40
    threshold = maintenance_margin_usd(size, mm)
    assert threshold == 4 * USD
    loss_at_threshold = 10 * USD - threshold
    assert not is_liquidatable(10 * USD, 0, loss_at_threshold, 0, size, mm)
    assert is_liquidatable(10 * USD, 0, loss_at_threshold + 1, 0, size, mm)
    assert maintenance_margin_usd(1, 40) == 1
    assert not is_liquidatable(1, 0, 0, 0, 1, 40)
    assert is_liquidatable(0, 0, 0, 0, 1, 40)
    assert not is_liquidatable(USD, 5, 0, 0, 250 * USD + 1, 40)
    assert is_liquidatable(USD, 0, 3 * USD, 0, 250 * USD, 40)
    assert margin_usd(USD, 0, 3 * USD, 0) == -2 * USD


def test_leverage_examples() -> None:
    assert leverage_bps(100 * USD, margin_usd(50 * USD, 0, 0, 0)) == 20_000
    assert leverage_bps(100, 3) == 333_334
    assert leverage_bps(100, 0) == U64_MAX
    assert leverage_bps(100, -5) == U64_MAX
    assert leverage_bps(U64_MAX, 1) == U64_MAX
    assert leverage_bps(0, 1) == 0


def test_liquidation_price_examples() -> None:
    entry = 150_000_000_000
    assert liquidation_price(LONG, entry, 100 * USD, 50 * USD, 0, 40) == 75_600_000_000
    assert liquidation_price(SHORT, entry, 100 * USD, 50 * USD, 0, 40) == 224_400_000_000
    assert liquidation_price(LONG, entry, 100 * USD, 50 * USD, 10 * USD, 40) == 90_600_000_000
    assert liquidation_price(SHORT, entry, 100 * USD, 50 * USD, 10 * USD, 40) == 209_400_000_000
    assert liquidation_price(LONG, entry, 100 * USD, 200 * USD, 0, 40) == 0
    assert liquidation_price(SHORT, entry, 100 * USD, 0, 200 * USD, 40) == 0
    assert liquidation_price(LONG, U64_MAX, 1, 0, U64_MAX, 40) == U64_MAX
    with raises_math(INVALID):
        liquidation_price(LONG, entry, 0, 1, 0, 40)
    assert liquidation_price(LONG, 10, 3, 1, 0, 0) == 7
    assert liquidation_price(SHORT, 10, 3, 1, 0, 0) == 13


def test_property_liquidation_price_is_conservative_and_tight() -> None:
    entries = (150_250_000_000, 1_000_000_000, 61_234_567_890_123, 3_333_333_333)
    sizes = [s % (1 << 44) + 1_000 for s in pseudo_random_u64s(25, 41)]
    for entry in entries:
        for size in sizes:
            for lev_x, fees_bps in ((2, 0), (10, 10), (50, 7), (250, 0), (200, 30)):
                collateral = size // lev_x
                fees = mul_div_ceil_u64(size, fees_bps, BPS_DENOMINATOR)

                def liquidatable_at(side: Side, price: int) -> bool:
                    pnl = position_pnl(side, entry, price, size)  # noqa: B023
                    return is_liquidatable(
                        collateral,  # noqa: B023
                        pnl.profit_usd,
                        pnl.loss_usd,
                        fees,  # noqa: B023
                        size,  # noqa: B023
                        40,
                    )

                slack = entry // size + 1
                lp = liquidation_price(LONG, entry, size, collateral, fees, 40)
                if lp > 0:
                    assert liquidatable_at(LONG, lp - 1)
                    assert not liquidatable_at(LONG, lp + 3 * slack)
                sp = liquidation_price(SHORT, entry, size, collateral, fees, 40)
                if 0 < sp < U64_MAX:
                    assert liquidatable_at(SHORT, sp + 1)
                    assert not liquidatable_at(SHORT, sp - 3 * slack)


# --- close.rs ----------------------------------------------------------------------------------


def _settle(side: Side, exit_price: int) -> CloseAmounts:
    return close_amounts(side, 100 * USD, 50 * USD, P150, exit_price, 0)


def test_seed_two_x_long_and_short() -> None:
    assert _settle(LONG, 180_000_000_000).payout_usd == 70 * USD
    assert _settle(LONG, 120_000_000_000).payout_usd == 30 * USD
    assert _settle(SHORT, 120_000_000_000).payout_usd == 70 * USD
    assert _settle(SHORT, 180_000_000_000).payout_usd == 30 * USD
    assert _settle(LONG, 180_000_000_000) == CloseAmounts(
        payout_usd=70 * USD, profit_usd=20 * USD, loss_usd=0, fee_usd=0, bad_debt_usd=0
    )


def test_seed_long_in_sol_tokens() -> None:
    open_price = OraclePrice(10_000_000_000, -8)
    collateral_usd = token_to_usd_floor(500_000_000, SOL_DECIMALS, open_price)
    assert collateral_usd == 50 * USD
    entry = entry_price_9dp(LONG, open_price)
    for exit_oracle, expected_usd, expected_lamports in (
        (OraclePrice(12_000_000_000, -8), 70 * USD, 583_333_333),
        (OraclePrice(8_000_000_000, -8), 30 * USD, 375_000_000),
    ):
        exit_ = exit_price_9dp(LONG, exit_oracle)
        c = close_amounts(LONG, 100 * USD, collateral_usd, entry, exit_, 0)
        assert c.payout_usd == expected_usd
        assert usd_to_token_floor(c.payout_usd, SOL_DECIMALS, exit_oracle) == expected_lamports


def test_fees_and_bad_debt() -> None:
    c = close_amounts(LONG, 100 * USD, 50 * USD, P150, 120_000_000_000, 5 * USD)
    assert (c.payout_usd, c.bad_debt_usd, c.fee_usd) == (25 * USD, 0, 5 * USD)
    c = close_amounts(LONG, 100 * USD, 50 * USD, P150, 60_000_000_000, 5 * USD)
    assert (c.payout_usd, c.loss_usd, c.bad_debt_usd) == (0, 60 * USD, 15 * USD)
    c = close_amounts(LONG, 100 * USD, 50 * USD, P150, 75_000_000_000, 0)
    assert (c.payout_usd, c.bad_debt_usd) == (0, 0)
    with raises_math(OVERFLOW):
        close_amounts(LONG, 1, U64_MAX, 1, 3, 0)


def test_partial_close_splits() -> None:
    pc = partial_close(100 * USD + 1, 50 * USD + 1, 3, 5_000)
    assert pc.size == BpsSplit(closed=50 * USD, remaining=50 * USD + 1)
    assert pc.collateral == BpsSplit(closed=25 * USD, remaining=25 * USD + 1)
    assert pc.entry_fee == BpsSplit(closed=2, remaining=1)
    full = partial_close(100 * USD, 50 * USD, 3, 10_000)
    assert (full.size.remaining, full.collateral.remaining, full.entry_fee.remaining) == (0, 0, 0)
    with raises_math(INVALID):
        partial_close(100, 50, 0, 0)
    with raises_math(INVALID):
        partial_close(100, 50, 0, 10_001)
    with raises_math(INVALID):
        partial_close(1, 50, 0, 9_999)
    pc = partial_close(100 * USD, 50 * USD, 0, 5_000)
    c = close_amounts(LONG, pc.size.closed, pc.collateral.closed, P150, 180_000_000_000, 0)
    assert c.payout_usd == 35 * USD


def test_split_bps_rounding() -> None:
    assert split_bps_floor(3, 5_000) == BpsSplit(closed=1, remaining=2)
    assert split_bps_ceil(3, 5_000) == BpsSplit(closed=2, remaining=1)
    with raises_math(INVALID):
        split_bps_floor(3, 10_001)


def test_property_settlement_identity_and_no_split_gain() -> None:
    values = [v % (1 << 50) for v in pseudo_random_u64s(60, 99)]
    exits = (1, 75_000_000_000, 149_999_999_999, P150, 150_000_000_001, 333_333_333_333)
    for w0, w1, w2 in zip(values, values[1:], values[2:], strict=False):
        size, collateral, fees = w0 + 1, w1, w2 % (w0 + 1)
        for side in (LONG, SHORT):
            for exit_ in exits:
                c = close_amounts(side, size, collateral, P150, exit_, fees)
                lhs = c.payout_usd - c.bad_debt_usd
                assert lhs == collateral + c.profit_usd - c.loss_usd - fees
                assert c.payout_usd == 0 or c.bad_debt_usd == 0
                for bps in (1, 3_333, 5_000, 9_999):
                    try:
                        pc = partial_close(size, collateral, fees, bps)
                    except MathError:
                        continue
                    a = close_amounts(
                        side, pc.size.closed, pc.collateral.closed, P150, exit_, pc.entry_fee.closed
                    )
                    b = close_amounts(
                        side,
                        pc.size.remaining,
                        pc.collateral.remaining,
                        P150,
                        exit_,
                        pc.entry_fee.remaining,
                    )
                    net = a.payout_usd - a.bad_debt_usd + b.payout_usd - b.bad_debt_usd
                    assert net <= lhs


# --- lp.rs -------------------------------------------------------------------------------------


def test_first_deposit_is_one_dollar_per_lp_less_the_locked_lp() -> None:
    assert lp_to_mint(1_000 * USD, 0, 0) == 999 * USD
    assert lp_to_mint(1_000 * USD, 5 * USD, 0) == 999 * USD
    assert lp_to_mint(USD, 0, 0) == 0
    assert lp_to_mint(USD + 1, 0, 0) == 1
    assert lp_token_price_usd(0, 0) == USD
    assert lp_token_price_usd(1_000 * USD, 999 * USD) == USD
    assert (pricing_supply(0), pricing_supply(1)) == (0, LOCKED_LP_SUPPLY + 1)
    with raises_math(OVERFLOW):
        pricing_supply(U64_MAX)


def test_later_deposits_and_redemptions() -> None:
    assert lp_to_mint(110 * USD, 1_100 * USD, 999 * USD) == 100 * USD
    assert usd_for_lp(100 * USD, 1_100 * USD, 999 * USD) == 110 * USD
    assert lp_token_price_usd(1_100 * USD, 999 * USD) == 1_100_000
    assert lp_to_mint(1, 3 * USD + 1, 2 * USD) == 0
    assert usd_for_lp(1, 2, 3) == 0
    assert usd_for_lp(999 * USD - 1, 1_000 * USD, 999 * USD) == 999 * USD - 1
    assert usd_for_lp(999 * USD, 1_000 * USD, 999 * USD) == 1_000 * USD


def test_a_lone_lp_cannot_shrink_the_pricing_supply_below_one_lp() -> None:
    aum = 27_182 * USD
    assert usd_for_lp(1, aum, 2) == 27_181
    assert lp_to_mint(54_000, aum, 1) == 1


def test_the_lp_fee_goes_to_the_lps_already_there() -> None:
    assert lp_to_mint_after_fee(9_950 * USD, 50 * USD, 1_000 * USD, 999 * USD) == 9_476_190_476
    assert lp_to_mint(9_950 * USD, 1_000 * USD, 999 * USD) == 9_950 * USD
    assert lp_to_mint_after_fee(7 * USD, 3, 0, 0) == 6 * USD
    assert lp_to_mint_after_fee(7, 0, 2 * USD, 2 * USD - LOCKED_LP_SUPPLY) == 7
    with raises_math(INVALID):
        lp_to_mint_after_fee(7, 1, 0, 10)
    with raises_math(OVERFLOW):
        lp_to_mint_after_fee(7, U64_MAX, 1, 10)


def test_lp_guards() -> None:
    with raises_math(INVALID):
        lp_to_mint(USD, 0, 5)
    with raises_math(INVALID):
        usd_for_lp(1, 0, 5)
    with raises_math(INVALID):
        usd_for_lp(6, 10, 5)
    with raises_math(INVALID):
        usd_for_lp(0, 10, 0)
    with raises_math(OVERFLOW):
        lp_to_mint(U64_MAX, 1, U64_MAX)


def test_custody_valuation_high_and_low() -> None:
    spot = OraclePrice(15_025, -2)
    ema = OraclePrice(150_000_000_001, -9)
    assert custody_value_usd(1, 9, spot, ema, Valuation.LOW) == 0
    assert custody_value_usd(1, 9, spot, ema, Valuation.HIGH) == 1
    assert custody_value_usd(2_000_000_000, 9, spot, ema, Valuation.LOW) == 300_000_000
    assert custody_value_usd(2_000_000_000, 9, spot, ema, Valuation.HIGH) == 300_500_000
    assert custody_value_usd(2_000_000_000, 9, spot, ema, Valuation.SPOT) == 300_500_000


def test_property_lp_round_trip_never_gains() -> None:
    values = [v % (1 << 60) for v in list(SAMPLE_U64S) + pseudo_random_u64s(40, 13)]
    positive = [v for v in values if v > 0]
    for aum in positive:
        for supply in positive[::2]:
            for deposit in values[::3]:
                try:
                    minted = lp_to_mint(deposit, aum, supply)
                except MathError:
                    continue
                aum2, supply2 = aum + deposit, supply + minted
                if aum2 > U64_MAX or supply2 > U64_MAX:
                    continue
                assert usd_for_lp(minted, aum2, supply2) <= deposit
                assert aum2 * pricing_supply(supply) >= aum * pricing_supply(supply2)


# --- range checks: what the program's types cannot hold ----------------------------------------


def test_out_of_range_arguments_are_caller_bugs() -> None:
    with pytest.raises(RangeError):
        fee_usd(U64_MAX + 1, 1)
    with pytest.raises(RangeError):
        fee_usd(-1, 1)
    with pytest.raises(RangeError):
        mul_div_floor(U128_MAX + 1, 1, 1)
    with pytest.raises(RangeError):
        OraclePrice(1, I32_MAX + 1)
    with pytest.raises(RangeError):
        token_to_usd_floor(1, 256, SOL)
    with pytest.raises(RangeError):
        fee_usd(True, 1)
    # A RangeError is a ValueError, never confused with a program error.
    assert not issubclass(RangeError, MathError)


# --- quotes: fixtures --------------------------------------------------------------------------

SOL_KEY, USDC_KEY = "SOL", "USDC"
FEES = q.Fees(
    open_position_bps=10,
    close_position_bps=10,
    swap_bps=30,
    # A flat LP fee: the dynamic curve with min == max.
    liquidity_min_fee_bps=20,
    liquidity_max_fee_bps=20,
    liquidation_reward_bps=50,
    protocol_share_bps=2_500,
)
PRICING_250X = q.PricingParams(
    min_initial_leverage=10_000,
    max_initial_leverage=1_000_000,
    max_leverage=MAX_LEVERAGE_250X,
    max_utilization_bps=8_000,
)
SEED_CURVE = q.BorrowRateParams(slope1=HOURLY_0_01_PCT, optimal_utilization=RATE_ONE)


def seed_custody(decimals: int, key: str, stable: bool = False) -> q.CustodyState:
    """A fee-free 250x custody with the seed borrow curve (0.01 %/h at 100 % utilization)."""
    return q.CustodyState(
        decimals=decimals,
        is_stable=stable,
        pricing=PRICING_250X,
        borrow_rate=SEED_CURVE,
        borrow_state=q.BorrowRateState(last_update=1_700_000_000),
        assets=q.Assets(owned=10**18 if decimals == 9 else 10**15),
        key=key,
    )


# --- quotes: DESIGN §4 seeds -------------------------------------------------------------------


def test_seed_borrow_through_custody_accrual() -> None:
    """Utilization 50 %, 0.01 %/h, size $1000 -> exactly $0.05 (50_000 units) after 3600 s."""
    t0 = 1_700_000_000
    custody = q.CustodyState(
        decimals=9,
        pricing=PRICING_250X,
        borrow_rate=SEED_CURVE,
        borrow_state=q.BorrowRateState(cumulative_interest=777, last_update=t0),
        assets=q.Assets(owned=1_000, locked=500),
    )
    assert q.custody_utilization(custody) == 500_000_000
    accrued = q.accrue_borrow(custody, t0 + 3_600)
    assert accrued.borrow_state == q.BorrowRateState(
        current_rate=50_000, cumulative_interest=777 + 180_000_000, last_update=t0 + 3_600
    )
    position = q.PositionState(
        side=LONG,
        price=P150,
        size_usd=1_000 * USD,
        collateral_usd=100 * USD,
        collateral_amount=1,
        locked_amount=1,
        borrow_index_snapshot=777,
    )
    assert q.position_borrow_fee_usd(position, accrued) == 50_000
    # Idempotent within a second; a clock going backwards changes nothing but the rate.
    assert q.accrue_borrow(accrued, t0 + 3_600) == accrued
    assert q.accrue_borrow(accrued, t0) == accrued
    # Unpaid fees settled into the position are added on top.
    assert q.position_borrow_fee_usd(replace(position, unpaid_borrow_fee_usd=5), accrued) == 50_005


def test_accruing_every_second_for_an_hour_equals_accruing_once() -> None:
    """The index is exact (``index + rate * seconds``): a crank accruing every second for an
    hour ends on exactly the index, and the position on exactly the fee, of a single accrual
    after the hour (the seed's $0.05). Values from the program's ``Custody::accrue_borrow``."""
    t0 = 1_700_000_000
    custody = q.CustodyState(
        decimals=9,
        pricing=PRICING_250X,
        borrow_rate=SEED_CURVE,
        borrow_state=q.BorrowRateState(cumulative_interest=777, last_update=t0),
        assets=q.Assets(owned=1_000, locked=500),  # 50 % utilization -> 50_000 (0.005 %/h)
    )
    once = q.accrue_borrow(custody, t0 + 3_600)
    every_second = custody
    for second in range(1, 3_601):
        every_second = q.accrue_borrow(every_second, t0 + second)
    expected = q.BorrowRateState(
        current_rate=50_000, cumulative_interest=180_000_777, last_update=t0 + 3_600
    )
    assert once.borrow_state == every_second.borrow_state == expected
    position = q.PositionState(LONG, P150, 1_000 * USD, 100 * USD, 1, 1, borrow_index_snapshot=777)
    assert q.position_borrow_fee_usd(position, once) == 50_000
    assert q.position_borrow_fee_usd(position, every_second) == 50_000


def test_first_accrual_only_starts_the_clock() -> None:
    custody = q.CustodyState(
        decimals=9, borrow_rate=SEED_CURVE, assets=q.Assets(owned=1_000, locked=1_000)
    )
    started = q.accrue_borrow(custody, 1_000)
    assert started.borrow_state == q.BorrowRateState(
        current_rate=HOURLY_0_01_PCT, cumulative_interest=0, last_update=1_000
    )
    assert q.accrue_borrow(started, 1_000 + 36).borrow_state.cumulative_interest == 3_600_000
    with raises_program("InvalidCalculationInput"):  # locked > owned
        q.accrue_borrow(replace(custody, assets=q.Assets(owned=1, locked=2)), 5)


def _seed_market(side: Side) -> tuple[q.CustodyState, q.CustodyState]:
    sol = seed_custody(9, SOL_KEY)
    if side is LONG:
        return sol, sol
    return sol, seed_custody(6, USDC_KEY, stable=True)


SOL_100 = q.Prices.of(10_000_000_000, -8)  # $100, spot == ema
USDC_1 = q.Prices.of(100_000_000, -8)


@pytest.mark.parametrize(
    ("side", "exit_dollars", "payout_usd", "payout_amount"),
    [
        (LONG, 120, 70 * USD, 583_333_333),  # $70 of SOL at $120, lamports rounded down
        (LONG, 80, 30 * USD, 375_000_000),  # $30 of SOL at $80
        (SHORT, 80, 70 * USD, 70 * USD),  # shorts are paid in USDC (6 decimals)
        (SHORT, 120, 30 * USD, 30 * USD),
    ],
)
def test_seed_two_x_through_quotes(
    side: Side, exit_dollars: int, payout_usd: int, payout_amount: int
) -> None:
    """2x, size $100, collateral $50, no fees: +20 % pays $70, -20 % pays $30 (and the mirror
    for shorts)."""
    custody, collateral_custody = _seed_market(side)
    collateral_prices = SOL_100 if side is LONG else USDC_1
    collateral_amount = 500_000_000 if side is LONG else 50 * USD  # 0.5 SOL / 50 USDC
    opened = q.get_entry_price_and_fee(
        side, custody, SOL_100, collateral_custody, collateral_prices, collateral_amount, 100 * USD
    )
    assert opened.entry_price == 100_000_000_000
    assert (opened.fee_usd, opened.fee_amount, opened.collateral_usd) == (0, 0, 50 * USD)
    assert opened.leverage_bps == 20_000
    # A long locks only the borrowed $50 (0.5 SOL at $100); a short locks its full $100 size.
    assert opened.locked_amount == (500_000_000 if side is LONG else 100 * USD)
    position = q.PositionState(
        side=side,
        price=opened.entry_price,
        size_usd=100 * USD,
        collateral_usd=opened.collateral_usd,
        collateral_amount=collateral_amount,
        locked_amount=opened.locked_amount,
    )
    exit_prices = q.Prices.of(exit_dollars * 10**8, -8)
    if side is LONG:
        collateral_prices = exit_prices
    close = q.quote_close(
        position, custody, exit_prices, collateral_custody, collateral_prices, BPS_DENOMINATOR
    )
    assert (close.payout_usd, close.payout_amount) == (payout_usd, payout_amount)
    assert (close.close_fee_usd, close.borrow_fee_usd, close.bad_debt_usd) == (0, 0, 0)
    assert close.profit_usd + 50 * USD - close.loss_usd == payout_usd


@pytest.mark.parametrize("side", [LONG, SHORT])
def test_seed_250x_at_the_limit(side: Side) -> None:
    """Collateral $1 on $250 at 250x max: exactly at the 0.4 % threshold survives; one unit of
    loss (one 9-dp price unit against it) is liquidatable."""
    custody, collateral_custody = _seed_market(side)
    collateral_prices = SOL_100 if side is LONG else USDC_1
    one_dollar = 10_000_000 if side is LONG else USD  # 0.01 SOL at $100 / 1 USDC
    opened = q.quote_open(
        side, custody, SOL_100, collateral_custody, collateral_prices, one_dollar, 250 * USD
    )
    assert opened.leverage_bps == MAX_LEVERAGE_250X
    assert opened.liquidation_price == opened.entry_price == 100_000_000_000  # already at the edge
    position = q.PositionState(
        side=side,
        price=opened.entry_price,
        size_usd=250 * USD,
        collateral_usd=opened.collateral_usd,
        collateral_amount=one_dollar,
        locked_amount=opened.locked_amount,
    )
    assert q.maintenance_margin_bps(custody) == 40
    assert not q.position_is_liquidatable(
        position, custody, SOL_100, collateral_custody, collateral_prices
    )
    against = -1 if side is LONG else 1
    moved = q.Prices.of(100_000_000_000 + against, -9)
    moved_collateral = moved if side is LONG else collateral_prices  # a long's collateral is SOL
    close = q.quote_close(position, custody, moved, collateral_custody, moved_collateral, 10_000)
    assert (close.loss_usd, close.payout_usd) == (1, USD - 1)
    assert q.position_is_liquidatable(
        position, custody, moved, collateral_custody, moved_collateral
    )
    # Or one unit less collateral at the entry price.
    assert q.position_is_liquidatable(
        replace(position, collateral_usd=USD - 1),
        custody,
        SOL_100,
        collateral_custody,
        collateral_prices,
    )


# --- quotes: scenarios pinned to the program's own Rust code -----------------------------------

SOL_PRICES = q.Prices.of(15_025_000_000, -8, ema=14_980_000_000)  # spot $150.25, ema $149.80
USDC_PRICES = q.Prices.of(99_990_000, -8, ema=100_020_000)  # spot $0.9999, ema $1.0002
T0 = 1_700_000_000


def sol_custody() -> q.CustodyState:
    return q.CustodyState(
        decimals=9,
        is_stable=False,
        pricing=PRICING_250X,
        fees=FEES,
        borrow_rate=q.BorrowRateParams(
            base_rate=1_000, slope1=100_000, slope2=10_000_000, optimal_utilization=800_000_000
        ),
        # Borrow indices are in INDEX_ONE units (rate x seconds): 1_234_567 x 3_600.
        borrow_state=q.BorrowRateState(
            current_rate=30_000, cumulative_interest=4_444_441_200, last_update=T0
        ),
        assets=q.Assets(
            owned=1_000_000_000_000,
            locked=250_000_000_000,
            collateral=10_000_000_000,
            protocol_fees=0,
        ),
        longs=q.PositionTotals(
            open_positions=2,
            size_usd=10_000 * USD,
            collateral_usd=1_000 * USD,
            size_over_entry=10_000 * USD * RATE_ONE // 140_000_000_000,
        ),
        shorts=q.PositionTotals(
            open_positions=1,
            size_usd=5_000 * USD,
            collateral_usd=500 * USD,
            size_over_entry=5_000 * USD * RATE_ONE // 155_000_000_000,
        ),
        ratios=q.TokenRatios(target_bps=5_000, min_bps=2_000, max_bps=8_000),
        key=SOL_KEY,
    )


def usdc_custody() -> q.CustodyState:
    return q.CustodyState(
        decimals=6,
        is_stable=True,
        pricing=PRICING_250X,
        fees=FEES,
        borrow_rate=q.BorrowRateParams(slope1=50_000, optimal_utilization=RATE_ONE),
        borrow_state=q.BorrowRateState(cumulative_interest=1_998_000, last_update=T0),
        assets=q.Assets(owned=200_000 * USD, locked=30_000 * USD, collateral=500 * USD),
        ratios=q.TokenRatios(target_bps=5_000, min_bps=2_000, max_bps=8_000),
        key=USDC_KEY,
    )


def pool() -> list[q.PricedCustody]:
    return [
        q.PricedCustody(sol_custody(), SOL_PRICES),
        q.PricedCustody(usdc_custody(), USDC_PRICES),
    ]


LONG_POSITION = q.PositionState(
    side=LONG,
    price=150_250_000_000,
    size_usd=3_000 * USD,
    collateral_usd=296_600_000,
    collateral_amount=1_979_973_297,
    locked_amount=18_046_728_972,  # the borrowed $2_703.40 at $149.80, rounded up
    borrow_index_snapshot=3_600_000_000,
    unpaid_borrow_fee_usd=1_234,
)
SHORT_POSITION = q.PositionState(
    side=SHORT,
    price=149_800_000_000,
    size_usd=5_000 * USD,
    collateral_usd=494_950_000,
    collateral_amount=494_999_499,
    locked_amount=5_000_500_051,
    borrow_index_snapshot=0,
)
SOL_UP = q.Prices.of(18_050_000_000, -8, ema=18_000_000_000)  # $180.50 / $180.00
SOL_DOWN = q.Prices.of(12_000_000_000, -8)  # $120


def test_quote_open_long_and_short_match_program() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    assert q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 2 * 10**9, 3_000 * USD) == (
        q.OpenQuote(
            entry_price=150_250_000_000,
            fee_usd=3_000_000,
            fee_amount=20_026_703,
            collateral_usd=296_600_000,
            leverage_bps=101_147,
            locked_amount=18_046_728_972,
            liquidation_price=136_146_533_334,
            price_impact=0,
        )
    )
    assert q.quote_open(SHORT, sol, SOL_PRICES, usdc, USDC_PRICES, 500 * USD, 5_000 * USD) == (
        q.OpenQuote(
            entry_price=149_800_000_000,
            fee_usd=5_000_000,
            fee_amount=5_000_501,
            collateral_usd=494_950_000,
            leverage_bps=101_021,
            locked_amount=5_000_500_051,
            liquidation_price=163_879_702_000,
            price_impact=0,
        )
    )


def test_quote_close_matches_program() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    full = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert full == q.CloseQuote(
        exit_price=180_000_000_000,
        size_usd=3_000 * USD,
        collateral_usd=296_600_000,
        collateral_amount=1_979_973_297,
        locked_amount=18_046_728_972,
        profit_usd=594_009_983,
        loss_usd=0,
        close_fee_usd=3_000_000,
        borrow_fee_usd=704_935,
        payout_usd=886_905_048,
        payout_amount=4_913_601_373,
        bad_debt_usd=0,
        price_impact=0,
        funding_paid_usd=0,
        funding_received_usd=0,
        auto_close_fee_usd=0,
    )
    half = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, 5_000)
    assert half == q.CloseQuote(
        exit_price=180_000_000_000,
        size_usd=1_500 * USD,
        collateral_usd=148_300_000,
        collateral_amount=989_986_648,
        locked_amount=9_023_364_486,
        profit_usd=297_004_991,
        loss_usd=0,
        close_fee_usd=1_500_000,
        borrow_fee_usd=352_468,  # half of the $0.704935 owed, rounded up
        payout_usd=443_452_523,
        payout_amount=2_456_800_681,
        bad_debt_usd=0,
        price_impact=0,
        funding_paid_usd=0,
        funding_received_usd=0,
        auto_close_fee_usd=0,
    )
    short = q.quote_close(SHORT_POSITION, sol, SOL_UP, usdc, USDC_PRICES, BPS_DENOMINATOR)
    assert short == q.CloseQuote(
        exit_price=180_500_000_000,
        size_usd=5_000 * USD,
        collateral_usd=494_950_000,
        collateral_amount=494_999_499,
        locked_amount=5_000_500_051,
        profit_usd=0,
        loss_usd=1_024_699_600,
        close_fee_usd=5_000_000,
        borrow_fee_usd=2_775,
        payout_usd=0,
        payout_amount=0,
        bad_debt_usd=534_752_375,
        price_impact=0,
        funding_paid_usd=0,
        funding_received_usd=0,
        auto_close_fee_usd=0,
    )


def test_liquidation_views_match_program() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    assert not q.position_is_liquidatable(LONG_POSITION, sol, SOL_UP, sol, SOL_UP)
    assert q.position_is_liquidatable(LONG_POSITION, sol, SOL_DOWN, sol, SOL_DOWN)
    assert q.position_is_liquidatable(SHORT_POSITION, sol, SOL_UP, usdc, USDC_PRICES)
    assert not q.position_is_liquidatable(SHORT_POSITION, sol, SOL_DOWN, usdc, USDC_PRICES)
    now = T0 + 7_200
    pnl = q.get_pnl(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now)
    assert pnl == q.PositionPnl(
        profit_usd=594_009_983,
        loss_usd=0,
        borrow_fee_usd=898_435,
        close_fee_usd=3_000_000,
        exit_price=180_000_000_000,
        funding_paid_usd=0,
        funding_received_usd=0,
    )
    assert q.get_liquidation_price(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now) == 136_191_529_953
    assert q.get_liquidation_price(SHORT_POSITION, sol, SOL_UP, usdc, USDC_PRICES, now) == (
        163_877_371_861
    )
    short_now = q.get_exit_price_and_fee(
        SHORT_POSITION, sol, SOL_UP, usdc, USDC_PRICES, now, 10_000
    )
    assert (short_now.borrow_fee_usd, short_now.bad_debt_usd) == (77_775, 534_827_375)
    assert not q.get_liquidation_state(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now)


def test_aum_and_lp_quotes_match_program() -> None:
    custodies = pool()
    # The collateral held (10 SOL, 500 USDC) less the positions' credit for it ($1000 + $500)
    # is the LPs': +$502.45 at spot ($1502.50 + $499.95), +$502.60 high, +$497.95 low.
    assert q.get_assets_under_management(custodies, 300_000 * USD) == q.AumView(
        spot_usd=349_344_631_324 + 502_450_000,
        high_usd=349_404_631_324 + 502_600_000,
        low_usd=348_894_631_324 + 497_950_000,
        lp_supply=300_000 * USD,
        lp_price_usd=1_166_153,
    )
    add = q.get_add_liquidity_amount_and_fee(custodies, SOL_KEY, 300_000 * USD, 10 * 10**9)
    # Minted against the AUM plus the 0.02 SOL fee (valued high), which stays with the LPs.
    assert add == q.AddLiquidityQuote(
        lp_amount=1_281_765_002,
        fee_amount=20_000_000,
        deposit_usd=1_495_004_000,
        aum_usd=349_907_231_324,
        fee_bps=20,
    )
    # The same pool with a flat 25 bps LP fee on USDC (the fee does not move the AUM).
    usdc_25 = replace(
        usdc_custody(), fees=replace(FEES, liquidity_min_fee_bps=25, liquidity_max_fee_bps=25)
    )
    custodies = [custodies[0], q.PricedCustody(usdc_25, USDC_PRICES)]
    remove = q.get_remove_liquidity_amount_and_fee(custodies, USDC_KEY, 300_000 * USD, 1_000 * USD)
    assert remove == q.RemoveLiquidityQuote(
        amount_out=1_161_494_160,
        fee_amount=2_911_013,
        withdraw_usd=1_164_638_055,
        aum_usd=349_392_581_324,
        fee_bps=25,
    )
    with raises_program("CustodyNotInPool"):
        q.quote_add_liquidity(custodies, "BTC", 300_000 * USD, 1)
    with raises_program("ZeroAmount"):
        q.quote_add_liquidity(custodies, SOL_KEY, 300_000 * USD, 0)
    # A first deposit (no LP minted yet) pays for the locked LP: $1 net of its fee is refused.
    with raises_program("DepositTooSmall"):
        q.quote_add_liquidity(custodies, USDC_KEY, 0, USD)
    first = q.quote_add_liquidity(custodies, USDC_KEY, 0, 2 * USD)
    assert first.lp_amount == first.deposit_usd - LOCKED_LP_SUPPLY > 0


def test_swap_matches_program() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    assert q.get_swap_amount_and_fees(sol, SOL_PRICES, usdc, USDC_PRICES, 10**9) == q.SwapQuote(
        amount_out=149_320_734, fee_amount=449_311, value_usd=149_800_000
    )
    assert q.get_swap_amount_and_fees(usdc, USDC_PRICES, sol, SOL_PRICES, 100 * USD) == q.SwapQuote(
        amount_out=663_494_375, fee_amount=1_996_473, value_usd=99_990_000
    )
    with raises_program("SameCustody"):
        q.get_swap_amount_and_fees(sol, SOL_PRICES, sol, SOL_PRICES, 10**9)
    with raises_program("InsufficientLiquidity"):
        q.quote_swap(sol, SOL_PRICES, usdc, USDC_PRICES, 10**15)


def test_settlement_bookkeeping_matches_program() -> None:
    sol = sol_custody()
    close = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    fee_amount = q.close_fee_amount(close, sol, SOL_UP)
    assert fee_amount == 20_525_955
    settled = q.settle_close(
        sol, close.collateral_amount, close.locked_amount, close.payout_amount, fee_amount
    )
    assert settled.assets == q.Assets(
        owned=997_061_240_436,
        locked=231_953_271_028,
        collateral=8_020_026_703,
        protocol_fees=5_131_488,
    )
    booked = q.remove_from_book(
        settled, LONG, LONG_POSITION.price, LONG_POSITION.size_usd, 0, close.collateral_usd, True
    )
    assert booked.longs == q.PositionTotals(
        open_positions=1,
        size_usd=7_000 * USD,
        collateral_usd=703_400_000,
        size_over_entry=51_461_849,
    )
    accrued = q.accrue_borrow(sol, T0 + 5_400)
    assert accrued.borrow_state == q.BorrowRateState(
        current_rate=32_250, cumulative_interest=4_618_591_200, last_update=T0 + 5_400
    )
    # A loss that exceeds what the pool can cover from owned tokens is refused.
    with raises_program("InsufficientLiquidity"):
        q.settle_close(sol, 0, 0, 2 * 10**12, 0)


def test_settle_close_protocol_share_yields_to_locked_tokens() -> None:
    # Every owned USDC is locked (100 for this position, 900 for others); the position is paid
    # its capped 150 = collateral + locked, its 2 USDC fee already taken out of the payout.
    usdc = usdc_custody()
    drained = replace(
        usdc,
        assets=q.Assets(
            owned=1_000 * USD, locked=1_000 * USD, collateral=50 * USD, protocol_fees=0
        ),
        fees=replace(usdc.fees, protocol_share_bps=5_000),
    )
    settled = q.settle_close(drained, 50 * USD, 100 * USD, 150 * USD, 2 * USD)
    # The 1 USDC protocol share would come out of tokens locked for others: it is not taken.
    assert settled.assets == q.Assets(
        owned=900 * USD, locked=900 * USD, collateral=0, protocol_fees=0
    )
    # With 0.4 USDC unlocked after the close, the protocol takes only that.
    roomier = replace(drained, assets=replace(drained.assets, owned=1_000_400_000))
    settled = q.settle_close(roomier, 50 * USD, 100 * USD, 150 * USD, 2 * USD)
    assert (settled.assets.owned, settled.assets.protocol_fees) == (900 * USD, 400_000)
    # With room to spare the whole share is taken.
    ample = replace(drained, assets=replace(drained.assets, owned=1_010 * USD))
    settled = q.settle_close(ample, 50 * USD, 100 * USD, 150 * USD, 2 * USD)
    assert (settled.assets.owned, settled.assets.protocol_fees) == (909 * USD, USD)


# --- quotes: checks and errors -----------------------------------------------------------------


def test_quote_errors_follow_program_order() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    with raises_program("ZeroAmount"):
        q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 0, USD)
    with raises_program("InsufficientCollateral"):  # the open fee eats all the collateral
        q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 1_000, 1_000 * USD)
    with raises_program("InvalidCloseSize"):
        q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, 0)
    with raises_program("InvalidCloseSize"):
        q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, 10_001)
    tiny = replace(LONG_POSITION, size_usd=1)
    for close_bps in (1, 9_999):
        with raises_program("InvalidCloseSize"):  # the closed size rounds to 0
            q.quote_close(tiny, sol, SOL_UP, sol, SOL_UP, close_bps)
    with raises_program("InvalidLongCollateral"):
        q.get_entry_price_and_fee(LONG, sol, SOL_PRICES, usdc, USDC_PRICES, 1, 1)
    with raises_program("InvalidShortCollateral"):
        q.get_entry_price_and_fee(SHORT, usdc, USDC_PRICES, sol, SOL_PRICES, 1, 1)
    with raises_program("DivisionByZero"):
        q.quote_open(
            LONG, replace(sol, pricing=q.PricingParams()), SOL_PRICES, sol, SOL_PRICES, 10**9, USD
        )


def test_payout_is_capped_by_the_slices_collateral_and_locked_tokens() -> None:
    """The pool pays at most the slice's collateral plus the tokens locked for it. A capped
    payout's ``payout_usd`` is those tokens' value at the high price (rounded down); the USD
    profit itself is not capped. Values from the program's ``Position::quote_close``."""
    sol = sol_custody()
    uncapped = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert (uncapped.payout_usd, uncapped.payout_amount) == (886_905_048, 4_913_601_373)
    starved = replace(LONG_POSITION, locked_amount=1_000_000_000)  # 1 SOL locked
    full = q.quote_close(starved, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert full.payout_amount == 1_979_973_297 + 1_000_000_000  # collateral + locked
    assert full.payout_usd == 537_885_180  # 2.979973297 SOL at $180.50, rounded down
    assert (full.profit_usd, full.borrow_fee_usd, full.bad_debt_usd) == (594_009_983, 704_935, 0)
    # A partial close is capped by its own slice of collateral and locked tokens.
    half = q.quote_close(starved, sol, SOL_UP, sol, SOL_UP, 5_000)
    assert (half.collateral_amount, half.locked_amount) == (989_986_648, 500_000_000)
    assert (half.payout_amount, half.payout_usd) == (1_489_986_648, 268_942_589)
    # Exactly at the cap nothing changes; one lamport less and the USD follows the tokens.
    at_cap = replace(LONG_POSITION, locked_amount=4_913_601_373 - 1_979_973_297)
    close = q.quote_close(at_cap, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert (close.payout_amount, close.payout_usd) == (4_913_601_373, 886_905_048)
    below = replace(at_cap, locked_amount=at_cap.locked_amount - 1)
    close = q.quote_close(below, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert (close.payout_amount, close.payout_usd) == (4_913_601_372, 886_905_047)
    # Nothing locked: only the trader's own collateral comes back.
    close = q.quote_close(replace(LONG_POSITION, locked_amount=0), sol, SOL_UP, sol, SOL_UP, 10_000)
    assert (close.payout_amount, close.payout_usd) == (1_979_973_297, 357_385_180)


def test_partial_close_pays_its_share_of_the_borrow_fee_and_the_rest_stays_owed() -> None:
    """A partial close pays ``split_bps_ceil(owed, close_bps).closed`` of the borrow fee owed;
    ``close_position`` keeps the rest in ``unpaid_borrow_fee_usd`` (snapshot moved to the
    index), so the remaining position still owes it and a later close pays it. Values from the
    program (``quote_close`` and ``handle_close_position``'s arithmetic, compiled on the host)."""
    sol = replace(
        seed_custody(9, SOL_KEY),
        fees=q.Fees(close_position_bps=10, protocol_share_bps=2_500),
        # 1_800_000_000 / INDEX_ONE = 0.05 % of size owed ($50 on $100_000).
        borrow_state=q.BorrowRateState(cumulative_interest=1_800_000_000, last_update=T0),
        assets=q.Assets(owned=10**18, locked=10**12, collateral=10**11),
    )
    position = q.PositionState(LONG, 100_000_000_000, 100_000 * USD, 10_000 * USD, 10**11, 10**12)
    assert q.position_borrow_fee_usd(position, sol) == 50 * USD
    assert not q.position_is_liquidatable(position, sol, SOL_100, sol, SOL_100)
    dust = q.quote_close(position, sol, SOL_100, sol, SOL_100, 1)  # 1 bps: $10 of $100_000
    assert dust == q.CloseQuote(
        exit_price=100_000_000_000,
        size_usd=10 * USD,
        collateral_usd=USD,
        collateral_amount=10_000_000,
        locked_amount=100_000_000,
        profit_usd=0,
        loss_usd=0,
        close_fee_usd=10_000,
        borrow_fee_usd=5_000,  # 1 bps of the $50 owed
        payout_usd=985_000,
        payout_amount=9_850_000,
        bad_debt_usd=0,
        price_impact=0,
        funding_paid_usd=0,
        funding_received_usd=0,
        auto_close_fee_usd=0,
    )
    rest = q.close_position_remainder(position, dust, sol)
    assert rest == replace(
        position,
        size_usd=99_990 * USD,
        collateral_usd=9_999 * USD,
        collateral_amount=99_990_000_000,
        locked_amount=999_900_000_000,
        borrow_index_snapshot=1_800_000_000,
        unpaid_borrow_fee_usd=49_995_000,
    )
    assert q.position_borrow_fee_usd(rest, sol) == 49_995_000
    final = q.quote_close(rest, sol, SOL_100, sol, SOL_100, BPS_DENOMINATOR)
    assert final.borrow_fee_usd == 49_995_000
    assert dust.borrow_fee_usd + final.borrow_fee_usd == 50 * USD  # nothing owed is lost
    third = q.quote_close(position, sol, SOL_100, sol, SOL_100, 3_333)
    assert third.borrow_fee_usd == 16_665_000
    assert q.close_position_remainder(position, third, sol).unpaid_borrow_fee_usd == 33_335_000
    # The slice's share rounds up: owing $50.000001, 1 bps pays 5_001 and 49_995_000 stay owed.
    owing_more = replace(position, unpaid_borrow_fee_usd=1)
    dust = q.quote_close(owing_more, sol, SOL_100, sol, SOL_100, 1)
    assert (dust.borrow_fee_usd, dust.payout_usd, dust.payout_amount) == (5_001, 984_999, 9_849_990)
    assert q.close_position_remainder(owing_more, dust, sol).unpaid_borrow_fee_usd == 49_995_000
    # A full close pays everything owed and leaves no position.
    full = q.quote_close(position, sol, SOL_100, sol, SOL_100, BPS_DENOMINATOR)
    assert full.borrow_fee_usd == 50 * USD
    with pytest.raises(ValueError, match="full close"):
        q.close_position_remainder(position, full, sol)


def test_oracle_reads_and_views() -> None:
    oracle = q.CustomOracleState(
        price=15_025_000_000, expo=-8, conf=15_025_000, ema=14_980_000_000, publish_time=T0
    )
    limits = q.OracleLimits(max_price_error_bps=10, max_price_age_sec=60)
    assert q.read_custom_oracle(oracle, limits, T0 + 60) == SOL_PRICES
    assert q.get_oracle_price(SOL_PRICES) == q.OraclePriceView(
        price=15_025_000_000, exponent=-8, ema_price=14_980_000_000, price_usd_e9=150_250_000_000
    )
    for bad, now, name in (
        (replace(oracle, price=0), T0, "InvalidOraclePrice"),
        (replace(oracle, ema=2**63), T0, "InvalidOraclePrice"),
        (replace(oracle, expo=-19), T0, "InvalidOraclePrice"),
        (oracle, T0 - 1, "InvalidPublishTime"),
        (oracle, T0 + 61, "StaleOraclePrice"),
        (replace(oracle, conf=15_025_001), T0, "OracleConfidenceTooWide"),
    ):
        with raises_program(name):
            q.read_custom_oracle(bad, limits, now)


def test_prices_pick_by_mantissa_with_one_exponent() -> None:
    assert SOL_PRICES.max() == OraclePrice(15_025_000_000, -8)
    assert SOL_PRICES.min() == OraclePrice(14_980_000_000, -8)
    assert q.trade_price(LONG, SOL_PRICES, opening=True) == SOL_PRICES.max()
    assert q.trade_price(LONG, SOL_PRICES, opening=False) == SOL_PRICES.min()
    assert q.trade_price(SHORT, SOL_PRICES, opening=True) == SOL_PRICES.min()
    assert q.trade_price(SHORT, SOL_PRICES, opening=False) == SOL_PRICES.max()
    with pytest.raises(ValueError, match="exponent"):
        q.Prices(OraclePrice(1, -8), OraclePrice(1, -6))


def test_liquidation_amounts() -> None:
    """One-step ladder (the default): the full reward of the full size, all to the liquidator
    without an insurance fraction, the rest to the owner."""
    sol = sol_custody()
    close = q.quote_close(LONG_POSITION, sol, SOL_DOWN, sol, SOL_DOWN, BPS_DENOMINATOR)
    amounts = q.liquidation_amounts(LONG_POSITION, sol, SOL_DOWN, sol, SOL_DOWN, 0)
    assert (amounts.step, amounts.close_bps, amounts.discount_bps) == (0, BPS_DENOMINATOR, 50)
    assert amounts.quote == close
    reward = usd_to_token_floor(fee_usd(3_000 * USD, 50), 9, SOL_DOWN.max())
    assert amounts.reward_amount == amounts.discount_amount == min(reward, close.payout_amount)
    assert amounts.reward_amount + amounts.owner_amount == close.payout_amount
    assert (amounts.insurance_amount, amounts.protocol_amount, amounts.retained_amount) == (0, 0, 0)
    assert amounts.fee_amount == q.close_fee_amount(close, sol, SOL_DOWN)
    with raises_program("NotLiquidatable"):
        q.liquidation_amounts(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, 0)


# --- quotes: rounding-direction properties -----------------------------------------------------


def test_property_open_then_close_at_same_prices_never_gains() -> None:
    """With no fees, opening and closing at unchanged prices pays back at most the collateral
    (in USD and in tokens), whatever the spot/EMA spread."""
    for spot, ema in ((15_025_000_000, 14_980_000_000), (99_999_999, 100_000_001), (7, 7)):
        prices = q.Prices.of(spot, -8, ema=ema)
        for side in (LONG, SHORT):
            custody, collateral_custody = _seed_market(side)
            cprices = prices if side is LONG else USDC_1
            for amount in (1_000_000_000, 123_456_789, 999):
                for size in (USD, 7 * USD + 3, 100 * USD):
                    try:
                        o = q.quote_open(
                            side, custody, prices, collateral_custody, cprices, amount, size
                        )
                    except q.PROGRAM_ERRORS:
                        continue
                    position = q.PositionState(
                        side, o.entry_price, size, o.collateral_usd, amount, o.locked_amount
                    )
                    c = q.quote_close(
                        position, custody, prices, collateral_custody, cprices, BPS_DENOMINATOR
                    )
                    assert c.profit_usd == 0
                    assert c.payout_usd <= o.collateral_usd
                    assert c.payout_amount <= amount


def test_property_swap_round_trip_never_gains() -> None:
    sol, usdc = sol_custody(), usdc_custody()
    free_sol, free_usdc = replace(sol, fees=q.Fees()), replace(usdc, fees=q.Fees())
    for spread in (0, 1, 1_000_000):
        sol_p = q.Prices.of(15_025_000_000, -8, ema=15_025_000_000 - spread)
        for amount in (1, 999, 10**6, 123_456_789, 10**10):
            try:
                out = q.quote_swap(free_sol, sol_p, free_usdc, USDC_PRICES, amount)
                back = q.quote_swap(free_usdc, USDC_PRICES, free_sol, sol_p, out.amount_out)
            except q.PROGRAM_ERRORS:
                continue
            assert back.amount_out <= amount


def test_property_lp_add_then_remove_never_gains() -> None:
    custodies = pool()
    supply = 300_000 * USD
    for amount in (10**6, 10**9, 77 * 10**9 + 7):
        add = q.quote_add_liquidity(custodies, SOL_KEY, supply, amount)
        sol = custodies[0].custody
        grown = replace(sol, assets=replace(sol.assets, owned=sol.assets.owned + amount))
        after = [q.PricedCustody(grown, SOL_PRICES), custodies[1]]
        out = q.quote_remove_liquidity(after, SOL_KEY, supply + add.lp_amount, add.lp_amount)
        assert out.amount_out + out.fee_amount <= amount


def test_aum_nets_the_open_book_at_spot() -> None:
    custodies = pool()
    view = q.get_assets_under_management(custodies, 1)
    assert view.high_usd >= view.spot_usd >= view.low_usd
    no_book = [
        q.PricedCustody(
            replace(
                e.custody,
                longs=q.PositionTotals(),
                shorts=q.PositionTotals(),
                assets=replace(e.custody.assets, collateral=0),
            ),
            e.prices,
        )
        for e in custodies
    ]
    spot_9dp = 150_250_000_000
    sol, usdc = custodies[0].custody, custodies[1].custody
    # Longs entered at $140 and shorts at $155 are both in profit at $150.25: the pool owes it.
    long_profit = q.book_value_usd(sol.longs, spot_9dp) - sol.longs.size_usd
    short_profit = sol.shorts.size_usd - q.book_value_usd(sol.shorts, spot_9dp)
    assert long_profit > 0
    assert short_profit > 0
    # The collateral the pool holds is worth its price; the positions are owed their credit.
    credit = sol.longs.collateral_usd + sol.shorts.collateral_usd
    held = 1_502_500_000 + 499_950_000  # 10 SOL at $150.25, 500 USDC at $0.9999
    assert view.spot_usd == (
        q.aum_usd(no_book, Valuation.SPOT) + held - credit - long_profit - short_profit
    )
    # A losing book adds its loss, but never more than its collateral; the long collateral
    # is worth next to nothing then.
    crashed = q.Prices.of(1_000_000, -8)  # $0.01
    losing = [q.PricedCustody(sol, crashed), custodies[1]]
    no_book_crashed = [q.PricedCustody(no_book[0].custody, crashed), no_book[1]]
    short_profit_crashed = sol.shorts.size_usd - q.book_value_usd(sol.shorts, 10_000_000)
    held_crashed = 100_000 + 499_950_000  # 10 SOL at $0.01, 500 USDC
    assert usdc.assets.collateral == 500 * USD
    assert q.aum_usd(losing, Valuation.SPOT) == (
        q.aum_usd(no_book_crashed, Valuation.SPOT)
        + sol.longs.collateral_usd
        - short_profit_crashed
        + held_crashed
        - credit
    )


# --- adapters: anchorpy-decoded accounts and view results --------------------------------------

CODER = Coder(load_idl())


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little", signed=False)


def _i(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little", signed=True)


def _u64s(*values: int) -> bytes:
    return b"".join(_u(v, 8) for v in values)


def _totals_bytes(t: q.PositionTotals) -> bytes:
    return _u64s(t.open_positions, t.size_usd, t.collateral_usd) + _u(t.size_over_entry, 16)


def custody_account_bytes(c: q.CustodyState) -> bytes:
    """Borsh layout of the ``Custody`` account (IDL field order), with junk in non-math fields."""
    p, f, r, s, a = c.pricing, c.fees, c.borrow_rate, c.borrow_state, c.assets
    return b"".join(
        [
            account_discriminator("Custody"),
            bytes(range(32)) * 3,  # pool, mint, token_account
            bytes([c.decimals, int(c.is_stable)]),
            b"\x00" + bytes(32) + bytes(32),  # oracle type Custom, account, feed id
            _u(c.oracle.max_price_error_bps, 8) + _u(c.oracle.max_price_age_sec, 4),
            _u64s(
                p.min_initial_leverage,
                p.max_initial_leverage,
                p.max_leverage,
                p.max_utilization_bps,
                p.max_position_size_usd,
                p.max_long_open_interest_usd,
                p.max_short_open_interest_usd,
                p.min_trade_size_usd,
                p.min_liquidity_deposit_usd,
            ),
            _u64s(
                f.open_position_bps,
                f.close_position_bps,
                f.min_fee_usd,
                f.swap_bps,
                f.liquidity_min_fee_bps,
                f.liquidity_max_fee_bps,
                f.liquidity_fee_k_bps,
                f.liquidation_reward_bps,
                f.protocol_share_bps,
            ),
            _u64s(r.base_rate, r.slope1, r.slope2, r.optimal_utilization),
            _u(s.current_rate, 8) + _u(s.cumulative_interest, 16) + _i(s.last_update, 8),
            _u64s(a.owned, a.locked, a.collateral, a.protocol_fees),
            _u64s(*range(100, 113)),  # stats
            _totals_bytes(c.longs),
            _totals_bytes(c.shorts),
            _u64s(c.ratios.target_bps, c.ratios.min_bps, c.ratios.max_bps),
            _risk_bytes(c),
            bytes([254, 253]),
        ]
    )


_PAYOFF_VARIANTS = (PayoffFn.SPOT, PayoffFn.LINEAR, PayoffFn.SQUARE, PayoffFn.SQRT)


def _risk_bytes(c: q.CustodyState) -> bytes:
    """Borsh layout of the risk-engine fields (liquidation .. insurance)."""
    lp, fs, ins = c.liquidation, c.funding_state, c.insurance
    steps = b"".join(_u64s(s.margin_fraction_bps, s.close_bps) for s in lp.steps)
    return b"".join(
        [
            steps + bytes([lp.num_steps]),
            _u64s(lp.auto_close_fee_usd, lp.insurance_fund_fraction_bps, lp.insurance_fund_cap_usd),
            _u64s(c.funding.funding_c, c.funding.max_hourly_rate),
            _u64s(*c.slippage.for_side(LONG), *c.slippage.for_side(SHORT)),
            bytes([_PAYOFF_VARIANTS.index(c.payoff.kind)]),
            _u64s(c.payoff.scale, c.payoff.max_profit_bps),
            _i(fs.current_rate, 8) + _i(fs.long_index, 16) + _i(fs.short_index, 16),
            _i(fs.last_update, 8),
            _u64s(
                ins.balance,
                ins.total_inflow,
                ins.total_outflow,
                ins.bad_debt_covered_usd,
                ins.bad_debt_uncovered_usd,
            ),
        ]
    )


def test_custody_adapter_round_trips_through_anchorpy() -> None:
    original = replace(
        sol_custody(),
        oracle=q.OracleLimits(max_price_error_bps=25, max_price_age_sec=30),
        borrow_state=q.BorrowRateState(
            current_rate=9, cumulative_interest=2**100 + 5, last_update=-3
        ),
    )
    decoded = CODER.accounts.decode(custody_account_bytes(original))
    assert q.CustodyState.from_account(decoded, key=SOL_KEY) == original
    risky = replace(
        synthetic_custody(),
        liquidation=TWO_STEP_LIQUIDATION,
        funding=q.FundingParams(funding_c=100, max_hourly_rate=RATE_ONE),
        slippage=q.SlippageParams(1, 2, 3, 4),
        funding_state=q.FundingState(current_rate=-7, long_index=-(2**100), short_index=2**90),
        insurance=q.InsuranceFund(1, 2, 3, 4, 5),
    )
    decoded = CODER.accounts.decode(custody_account_bytes(risky))
    assert q.CustodyState.from_account(decoded, key=risky.key) == risky


def test_position_adapter_round_trips_through_anchorpy() -> None:
    owed_funding = replace(SHORT_POSITION, funding_index_snapshot=-(2**90), unpaid_funding_usd=-5)
    for position in (
        LONG_POSITION,
        replace(SHORT_POSITION, borrow_index_snapshot=2**90),
        owed_funding,
    ):
        raw = b"".join(
            [
                account_discriminator("Position"),
                bytes(32 * 4),
                bytes([0 if position.side is LONG else 1]),
                _i(T0, 8) + _i(T0 + 1, 8),
                _u64s(
                    position.price,
                    position.size_usd,
                    position.collateral_usd,
                    position.collateral_amount,
                    position.locked_amount,
                ),
                _u(position.borrow_index_snapshot, 16),
                _u(position.unpaid_borrow_fee_usd, 8),
                _i(position.funding_index_snapshot, 16) + _i(position.unpaid_funding_usd, 8),
                b"\x07",
            ]
        )
        assert q.PositionState.from_account(CODER.accounts.decode(raw)) == position


def test_oracle_adapter_and_side_names() -> None:
    raw = account_discriminator("CustomOracle") + struct.pack(
        "<QiQQqB", 15_025_000_000, -8, 1_000, 14_980_000_000, T0, 1
    )
    decoded = CODER.accounts.decode(raw)
    assert q.CustomOracleState.from_account(decoded) == q.CustomOracleState(
        price=15_025_000_000, expo=-8, conf=1_000, ema=14_980_000_000, publish_time=T0
    )
    assert q.Prices.from_custom_oracle(decoded) == SOL_PRICES
    assert q.side_from_decoded("Short") is SHORT
    assert q.side_from_decoded(LONG) is LONG


def test_view_results_decode_into_the_same_dataclasses() -> None:
    expected = q.OpenQuote(*range(1, 9))
    decoded = CODER.types.decode("OpenQuote", _u64s(*range(1, 9)))
    assert q.OpenQuote.from_decoded(decoded) == expected
    close = q.CloseQuote(*range(1, 17))
    assert (
        q.CloseQuote.from_decoded(CODER.types.decode("CloseQuote", _u64s(*range(1, 17)))) == close
    )
    for cls, name, n in (
        (q.PositionPnl, "PositionPnl", 7),
        (q.AddLiquidityQuote, "AddLiquidityQuote", 5),
        (q.RemoveLiquidityQuote, "RemoveLiquidityQuote", 5),
        (q.SwapQuote, "SwapQuote", 3),
        (q.AumView, "AumView", 5),
    ):
        values = list(range(10, 10 + n))
        assert cls.from_decoded(CODER.types.decode(name, _u64s(*values))) == cls(*values)
    view = CODER.types.decode("OraclePriceView", _u(5, 8) + _i(-8, 4) + _u64s(6, 7))
    assert q.OraclePriceView.from_decoded(view) == q.OraclePriceView(5, -8, 6, 7)
    # Plain mappings (e.g. JSON) work as well.
    assert q.SwapQuote.from_decoded({"amount_out": 1, "fee_amount": 2, "value_usd": 3}) == (
        q.SwapQuote(1, 2, 3)
    )


# --- risk engine: pure math, the Rust vectors (payoff.rs) -------------------------------------

K1 = RATE_ONE  # k = 1 with 9 decimals


def _usd_price(dollars: int) -> OraclePrice:
    return OraclePrice(dollars, 0)


def test_isqrt_is_exact_floor() -> None:
    for n in (0, 1, 2, 3, 4, 15, 16, 17, 99, 100, 1 << 64, U128_MAX):
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1), n
    with pytest.raises(RangeError):
        isqrt(U128_MAX + 1)


def test_payoff_linear_square_sqrt_examples() -> None:
    # 1·ETH at $1000 -> $1000 per unit; 3·ETH -> $3000.
    assert payoff_price(PayoffFn.LINEAR, K1, _usd_price(1000)).to_price_9dp_floor() == 1_000 * K1
    assert payoff_price(PayoffFn.LINEAR, 3 * K1, _usd_price(1000)).to_price_9dp_floor() == (
        3_000 * K1
    )
    # 0.001·ETH² at $1000 -> $1000; at $2000 -> $4000.
    assert payoff_price(PayoffFn.SQUARE, 1_000_000, _usd_price(1000)).price == 1_000 * K1
    assert payoff_price(PayoffFn.SQUARE, 1_000_000, _usd_price(2000)).price == 4_000 * K1
    # 10·√ETH at $10000 -> $1000; at $2 -> 10·1.414213562.
    assert payoff_price(PayoffFn.SQRT, 10 * K1, _usd_price(10_000)).price == 1_000 * K1
    assert payoff_price(PayoffFn.SQRT, 10 * K1, _usd_price(2)).price == 14_142_135_620


def test_payoff_spot_untouched_zero_scale_and_overflow() -> None:
    p = OraclePrice(15_025, -2)
    out = payoff_price(PayoffFn.SPOT, 0, p)
    assert (out.price, out.exponent) == (15_025, -2)
    with raises_math(INVALID):
        payoff_price(PayoffFn.SQUARE, 0, p)
    # $200k squared with k = 1: 4e19 9-dp units > u64::MAX.
    with raises_math(OVERFLOW):
        payoff_price(PayoffFn.SQUARE, K1, _usd_price(200_000))


def test_max_profit_is_the_capped_share_of_size_rounded_up() -> None:
    assert max_profit_usd(1_000_000_000, 10_000) == 1_000_000_000
    assert max_profit_usd(1_000_000_000, 5_000) == 500_000_000
    assert max_profit_usd(1_000_000_000, 30_000) == 3_000_000_000
    assert max_profit_usd(3, 5_000) == 2
    assert max_profit_usd(0, 5_000) == 0
    with raises_math(OVERFLOW):
        max_profit_usd(U64_MAX, 20_000)


def test_property_payoffs_are_monotonic() -> None:
    for kind in (PayoffFn.LINEAR, PayoffFn.SQUARE, PayoffFn.SQRT):
        values = [
            payoff_price(kind, 1_000, _usd_price(p)).price
            for p in (1, 2, 3, 10, 999, 1000, 1001, 50_000)
        ]
        assert values == sorted(values), kind


# --- slippage.rs -------------------------------------------------------------------------------


def test_price_impact_worked_example() -> None:
    # A = 10 bps, B = 100 bps, size 10 % of liquidity: 10 x 0.1 + 100 x 0.01 = 2 bps.
    impact = price_impact(100_000_000, 1_000_000_000, 10, 100)
    assert impact == 200_000
    assert apply_impact(1_000_000_000_000, impact, True) == 1_000_200_000_000
    assert apply_impact(1_000_000_000_000, impact, False) == 999_800_000_000


def test_price_impact_zero_coefficients_and_caps() -> None:
    assert price_impact(1, 1, 0, 0) == 0
    assert price_impact(1, 0, 1, 0) == MAX_PRICE_IMPACT
    assert price_impact(U64_MAX, 1, 10_000, 10_000) == MAX_PRICE_IMPACT
    assert price_impact(1, U64_MAX, 1, 0) == 1  # a tiny trade still pays one unit
    assert price_impact(0, 1, 5, 5) == 0
    # The impact applied is clamped to the cap.
    assert apply_impact(10**12, RATE_ONE, False) == apply_impact(10**12, MAX_PRICE_IMPACT, False)


def test_property_impact_monotone_and_against_the_trader() -> None:
    for a_bps, b_bps in ((10, 100), (1, 0), (0, 7), (10_000, 10_000)):
        impacts = [
            price_impact(size, 1_000_000_000, a_bps, b_bps)
            for size in (1, 10, 1_000, 1_000_000, 100_000_000, 1_000_000_000, U64_MAX)
        ]
        assert impacts == sorted(impacts)
        assert all(0 < i <= MAX_PRICE_IMPACT for i in impacts)
        for price in (1, 999, 150_250_000_000):
            for impact in impacts:
                assert (
                    apply_impact(price, impact, False) <= price <= apply_impact(price, impact, True)
                )


# --- funding.rs --------------------------------------------------------------------------------


def test_funding_worked_example_heavy_longs_pay_light_shorts() -> None:
    # Longs $3000, shorts $1000, pool $100,000, C = 100: skew 2000 / (100 x 100,000) = 0.02 %/h.
    rate = funding_rate(3_000 * USD, 1_000 * USD, 100_000 * USD, 100, RATE_ONE)
    assert rate == 200_000
    long_index, short_index = accrue_funding(0, 0, rate, 3_600, 3_000 * USD, 1_000 * USD)
    # A $1000 long pays $0.20 over the hour; a $1000 short receives 3 x $0.20 = $0.60.
    assert funding_usd(1_000 * USD, long_index, 0) == 200_000
    assert funding_usd(1_000 * USD, short_index, 0) == -600_000


def test_funding_heavy_shorts_pay_cap_and_off_switch() -> None:
    rate = funding_rate(0, 5_000 * USD, 1_000 * USD, 1, 10_000_000)
    assert rate == -10_000_000  # capped at 1 %/h
    long_index, short_index = accrue_funding(0, 0, rate, 60, 0, 5_000 * USD)
    assert long_index == 0  # no longs: shorts pay the pool
    assert short_index > 0
    assert funding_rate(10, 0, 1, 0, RATE_ONE) == 0
    assert funding_rate(7, 7, 1, 5, RATE_ONE) == 0
    assert funding_rate(1, 0, 0, 5, 123) == 123  # no liquidity: the cap
    assert accrue_funding(5, -5, 0, 100, 1, 1) == (5, -5)
    assert accrue_funding(5, -5, 9, 0, 1, 1) == (5, -5)


def test_funding_parts_and_errors() -> None:
    assert funding_parts(7) == (7, 0)
    assert funding_parts(-7) == (0, 7)
    assert funding_parts(0) == (0, 0)
    # Rounding: a payer's share rounds up, a receiver's down.
    assert funding_usd(1, 1, 0) == 1
    assert funding_usd(1, -1, 0) == 0
    with raises_math(OVERFLOW):
        funding_usd(U64_MAX, 2**126, -(2**126))  # the index delta leaves i128
    with raises_math(OVERFLOW):
        funding_usd(U64_MAX, INDEX_ONE * 2**63, 0)  # the amount leaves i64
    with raises_math(OVERFLOW):
        funding_rate(1, 0, 0, 1, 2**63)  # the cap itself does not fit i64


def test_property_funding_receivers_never_get_more_than_payers_pay() -> None:
    pairs = [(3, 7), (1_000_001, 999_999), (5, 1), (123_456_789, 3)]
    pairs += [(1 + v % 10**7, 1 + (v >> 20) % 10**7) for v in pseudo_random_u64s(40, 7)]
    for lo, so in pairs:
        for liquidity, elapsed in ((10 * USD, 7), (10**7 * USD, 3_600), (1, 1)):
            rate = funding_rate(lo * USD, so * USD, liquidity, 1, RATE_ONE)
            long_index, short_index = accrue_funding(0, 0, rate, elapsed, lo * USD, so * USD)
            paid_by_longs = funding_usd(lo * USD, long_index, 0)
            paid_by_shorts = funding_usd(so * USD, short_index, 0)
            assert paid_by_longs + paid_by_shorts >= 0, (lo, so)
            # The heavy side pays, the light side receives.
            assert (paid_by_longs >= 0) == (lo >= so) or paid_by_longs == 0


# --- liquidity_fee.rs --------------------------------------------------------------------------


def test_liquidity_fee_worked_examples() -> None:
    # min 10, max 100, K 1000, target 20 %: 20 % -> 30 % (d = 1000) pays 10 + 90 x 1000 / 2000.
    assert liquidity_fee_bps(10, 100, 1_000, 2_000, 2_000, 3_000) == 55
    # Larger K, slower change: K = 9000 -> 10 + ceil(90 x 1000 / 10000) = 19 bps.
    assert liquidity_fee_bps(10, 100, 9_000, 2_000, 2_000, 3_000) == 19
    assert liquidity_fee_bps(10, 100, 1_000, 2_000, 3_000, 2_500) == 10  # toward the target
    assert liquidity_fee_bps(10, 100, 0, 2_000, 2_000, 2_001) == 100  # K = 0: max at once
    assert liquidity_fee_bps(30, 30, 5, 0, 0, 10_000) == 30  # flat
    with raises_math(INVALID):
        liquidity_fee_bps(31, 30, 5, 0, 0, 1)
    assert ratio_bps(1, 0) == 0
    assert ratio_bps(1, 3) == 3_333


def test_property_liquidity_fee_between_min_and_max_and_growing() -> None:
    for min_bps, max_bps, k_bps in ((5, 80, 700), (0, 1_000, 0), (20, 20, 1), (1, 2, 10_000)):
        last = min_bps
        for after in range(2_000, 10_001, 250):
            fee = liquidity_fee_bps(min_bps, max_bps, k_bps, 2_000, 2_000, after)
            assert min_bps <= fee <= max_bps
            assert fee >= last
            last = fee
        # Any move that gets no farther from the target pays the minimum.
        assert liquidity_fee_bps(min_bps, max_bps, k_bps, 5_000, 9_000, 1_000) == min_bps


# --- liquidation_steps.rs ----------------------------------------------------------------------

TWO_STEPS = (Step(10_000, 5_000), Step(5_000, 10_000))


def test_ladder_validation() -> None:
    assert steps_are_valid(TWO_STEPS)
    assert steps_are_valid([Step(10_000, 10_000)])
    assert not steps_are_valid([])
    assert not steps_are_valid([Step(9_000, 10_000)])
    assert not steps_are_valid([Step(10_000, 5_000)])
    assert not steps_are_valid([TWO_STEPS[0], Step(10_000, 10_000)])  # fraction not falling
    assert not steps_are_valid([Step(10_000, 10_000), Step(1, 5_000)])  # close shrinking
    assert not steps_are_valid([TWO_STEPS[0]] * 5)
    assert not steps_are_valid([Step(10_000, 10_000), Step(0, 10_000)])  # zero fraction


def test_steps_walk_down_with_the_margin() -> None:
    # Size $1000, MMR 100 bps: step 0 below $10, step 1 below $5.
    size = 1_000_000_000
    assert liquidation_step(10_000_000, size, 100, TWO_STEPS) is None
    assert liquidation_step(9_999_999, size, 100, TWO_STEPS) == 0
    assert liquidation_step(5_000_000, size, 100, TWO_STEPS) == 0
    assert liquidation_step(4_999_999, size, 100, TWO_STEPS) == 1
    assert liquidation_step(-1, size, 100, TWO_STEPS) == 1
    assert step_threshold_usd(size, 100, TWO_STEPS[1]) == 5_000_000


def test_one_step_matches_the_plain_threshold() -> None:
    one = [Step(10_000, 10_000)]
    for margin, size in ((3_999, 1_000_000), (4_000, 1_000_000), (0, 1), (-5, 7), (399, 100_000)):
        threshold = maintenance_margin_usd(size, 40)
        assert (liquidation_step(margin, size, 40, one) is not None) == (margin < threshold)


def test_discount_grows_to_the_full_value() -> None:
    assert step_discount_bps(100, 0, 2) == 50
    assert step_discount_bps(100, 1, 2) == 100
    assert step_discount_bps(100, 0, 1) == 100
    assert step_discount_bps(100, 0, 3) == 34
    with raises_math(INVALID):
        step_discount_bps(100, 2, 2)
    with raises_math(INVALID):
        step_discount_bps(100, 0, 0)


def test_discount_split_respects_the_cap() -> None:
    assert split_discount(1_000, 2_000, U64_MAX) == DiscountSplit(800, 200, 0)
    assert split_discount(1_000, 2_000, 50) == DiscountSplit(800, 50, 150)
    assert split_discount(1_000, 0, 50) == DiscountSplit(1_000, 0, 0)
    with raises_math(INVALID):
        split_discount(1, 10_001, 0)


def test_property_discount_split_sums_and_deeper_steps_never_discount_less() -> None:
    for discount in SAMPLE_U64S[:20]:
        for fraction in (0, 1, 2_000, 9_999, 10_000):
            for room in (0, 1, 10**6, U64_MAX):
                split = split_discount(discount, fraction, room)
                assert split.liquidator + split.insurance + split.protocol == discount
                assert split.insurance <= room
    for count in range(1, MAX_STEPS + 1):
        discounts = [step_discount_bps(77, i, count) for i in range(count)]
        assert discounts == sorted(discounts)
        assert discounts[-1] == 77


# --- risk engine through the quotes ------------------------------------------------------------

TWO_STEP_LIQUIDATION = q.LiquidationParams(
    steps=(Step(10_000, 5_000), Step(5_000, 10_000), Step(), Step()),
    num_steps=2,
    auto_close_fee_usd=2 * USD,
    insurance_fund_fraction_bps=2_000,
    insurance_fund_cap_usd=50 * USD,
)
ETH_SQUARED = "ETH2"
ETH_1000 = q.Prices.of(1_000_00, -2, ema=999_00)  # oracle ETH $1000.00 / EMA $999.00


def synthetic_custody() -> q.CustodyState:
    """An "ETH²" payoff market: 0.001·ETH², profits capped at 2x size, stable collateral."""
    return q.CustodyState(
        decimals=9,
        pricing=PRICING_250X,
        fees=FEES,
        payoff=q.PayoffParams(kind=PayoffFn.SQUARE, scale=1_000_000, max_profit_bps=20_000),
        key=ETH_SQUARED,
    )


def test_payoff_market_prices_and_collateral() -> None:
    eth2 = synthetic_custody()
    prices = q.custody_prices(eth2, ETH_1000)
    # $1000² x 0.001 = $1000 per unit; EMA $999² x 0.001 = $998.001.
    assert prices == q.Prices.of(1_000 * K1, -9, ema=998_001_000_000)
    assert q.custody_prices(sol_custody(), SOL_PRICES) is SOL_PRICES
    oracle = q.CustomOracleState(price=1_000_00, expo=-2, conf=0, ema=999_00, publish_time=T0)
    assert q.read_custody_prices(eth2, oracle, T0) == prices
    usdc = usdc_custody()
    for side in (LONG, SHORT):
        q.check_side(side, eth2, usdc)  # a stable on both sides
        with raises_program("InvalidPayoffCollateral"):
            q.check_side(side, eth2, sol_custody())
    # Both sides lock max_profit_bps of size in the stable custody: 2 x $500 = $1000.
    quote = q.quote_open(LONG, eth2, prices, usdc, USDC_PRICES, 100 * USD, 500 * USD, 0)
    assert quote.locked_amount == usd_to_token_ceil(1_000 * USD, 6, USDC_PRICES.min())
    assert quote.entry_price == 1_000 * K1
    for fn in (
        lambda: q.quote_add_liquidity([q.PricedCustody(eth2, prices)], ETH_SQUARED, 0, 10**9),
        lambda: q.quote_remove_liquidity([q.PricedCustody(eth2, prices)], ETH_SQUARED, 1, 1),
        lambda: q.quote_swap(eth2, prices, usdc, USDC_PRICES, 10**9),
        lambda: q.quote_swap(usdc, USDC_PRICES, eth2, prices, 10**6),
    ):
        with raises_program("SyntheticCustody"):
            fn()


def test_min_fee_min_trade_size_and_impact_in_quotes() -> None:
    sol = replace(
        sol_custody(),
        fees=replace(FEES, min_fee_usd=5 * USD),
        pricing=replace(PRICING_250X, min_trade_size_usd=50 * USD),
        slippage=q.SlippageParams(long_a_bps=10, long_b_bps=100, short_a_bps=20, short_b_bps=0),
    )
    aum = 30_000 * USD
    with raises_program("TradeTooSmall"):
        q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 10**9, 49 * USD, aum)
    with pytest.raises(ValueError, match="pool_aum_usd"):
        q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 10**9, 3_000 * USD)
    quote = q.quote_open(LONG, sol, SOL_PRICES, sol, SOL_PRICES, 10**9, 3_000 * USD, aum)
    # 10 % of the pool: 10 x 0.1 + 100 x 0.01 = 2 bps above the high price, rounded up.
    assert quote.price_impact == 200_000
    assert quote.entry_price == apply_impact(150_250_000_000, 200_000, True)
    assert quote.fee_usd == 5 * USD  # 10 bps of $3000 is $3: the minimum applies
    close = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR, aum)
    assert close.price_impact == 200_000
    assert close.exit_price == apply_impact(180_000_000_000, 200_000, False)
    assert close.close_fee_usd == 5 * USD
    # A short sells on open (price down) and buys on close (price up).
    short = q.quote_open(
        SHORT, sol, SOL_PRICES, usdc_custody(), USDC_PRICES, 500 * USD, 3_000 * USD, aum
    )
    assert short.entry_price == apply_impact(149_800_000_000, 200_000, False)  # 20 bps x 0.1


def _funded_custody() -> q.CustodyState:
    """SOL with $10,000 of longs against $5,000 of shorts and funding on (C = 10)."""
    return replace(
        sol_custody(),
        funding=q.FundingParams(funding_c=10, max_hourly_rate=RATE_ONE),
        funding_state=q.FundingState(current_rate=0, last_update=T0),
    )


def test_custody_funding_accrual_and_position_funding() -> None:
    aum = 100_000 * USD
    sol = q.accrue_funding(_funded_custody(), T0, aum)
    # skew $5000 / (10 x $100,000) = 0.5 %/h, set for what follows; nothing accrued yet.
    assert sol.funding_state == q.FundingState(current_rate=5_000_000, last_update=T0)
    later = q.accrue_funding(sol, T0 + 3_600, aum)
    assert later.funding_state.long_index == 5_000_000 * 3_600
    assert later.funding_state.short_index == -2 * 5_000_000 * 3_600
    assert q.funding_index(later, LONG) == later.funding_state.long_index
    # The $3000 long pays 0.5 % = $15; the $5000 short receives 1 % = $50.
    assert q.position_funding_usd(LONG_POSITION, later) == 15 * USD
    assert q.position_funding_usd(SHORT_POSITION, later) == -50 * USD
    # Accruing twice in one second changes nothing; the first accrual only starts the clock.
    assert q.accrue_funding(later, T0 + 3_600, aum) == later
    fresh = replace(later, funding_state=replace(later.funding_state, last_update=0))
    assert q.accrue_funding(fresh, T0, aum).funding_state.long_index == 5_000_000 * 3_600


def test_close_settles_funding_shares() -> None:
    sol = q.accrue_funding(q.accrue_funding(_funded_custody(), T0, 0), T0 + 3_600, 0)
    # No liquidity: the rate is the cap (100 %/h), the long owes $3000, the short receives.
    owed = q.position_funding_usd(LONG_POSITION, sol)
    assert owed == 3_000 * USD
    full = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, BPS_DENOMINATOR)
    assert (full.funding_paid_usd, full.funding_received_usd) == (owed, 0)
    assert full.bad_debt_usd > 0  # more funding than collateral + profit
    half = q.quote_close(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, 3_333)
    assert half.funding_paid_usd == split_bps_ceil(owed, 3_333).closed
    assert q.funding_after(LONG_POSITION, sol, half) == owed - half.funding_paid_usd
    rest = q.close_position_remainder(LONG_POSITION, half, sol)
    assert rest.funding_index_snapshot == sol.funding_state.long_index
    assert rest.unpaid_funding_usd == owed - half.funding_paid_usd
    assert q.position_funding_usd(rest, sol) == rest.unpaid_funding_usd  # nothing lost
    short_custody = replace(usdc_custody())
    received = q.quote_close(SHORT_POSITION, sol, SOL_DOWN, short_custody, USDC_PRICES, 3_333)
    short_owed = q.position_funding_usd(SHORT_POSITION, sol)
    assert short_owed < 0
    assert received.funding_received_usd == split_bps_floor(-short_owed, 3_333).closed
    assert received.funding_paid_usd == 0


def test_pnl_and_liquidation_price_count_funding() -> None:
    """Views accrue funding over the elapsed time at the rate of the current open interest."""
    sol = _funded_custody()
    now = T0 + 3_600
    pnl = q.get_pnl(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now, 100_000 * USD)
    assert (pnl.funding_paid_usd, pnl.funding_received_usd) == (15 * USD, 0)  # 0.5 % of $3000
    with pytest.raises(ValueError, match="pool_aum_usd"):
        q.get_pnl(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now)
    plain = q.get_liquidation_price(
        LONG_POSITION, sol_custody(), SOL_UP, sol_custody(), SOL_UP, now
    )
    with_funding = q.get_liquidation_price(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, now, 0)
    assert with_funding > plain  # paying funding brings a long's liquidation closer


def test_lp_fee_rises_away_from_the_target() -> None:
    curve = replace(
        FEES, liquidity_min_fee_bps=5, liquidity_max_fee_bps=100, liquidity_fee_k_bps=500
    )
    sol = replace(sol_custody(), fees=curve)
    custodies = [q.PricedCustody(sol, SOL_PRICES), q.PricedCustody(usdc_custody(), USDC_PRICES)]
    # SOL is ~43 % of the pool against a 50 % target: a small deposit moves toward it.
    small = q.quote_add_liquidity(custodies, SOL_KEY, 300_000 * USD, 10**9)
    assert small.fee_bps == 5
    big = q.quote_add_liquidity(custodies, SOL_KEY, 300_000 * USD, 2_000 * 10**9)
    value = custody_value_usd(sol.assets.owned, 9, SOL_PRICES.spot, SOL_PRICES.ema, Valuation.HIGH)
    gross = custody_value_usd(2_000 * 10**9, 9, SOL_PRICES.spot, SOL_PRICES.ema, Valuation.LOW)
    assert big.fee_bps == q.custody_liquidity_fee_bps(sol, value, big.aum_usd, gross, adding=True)
    assert 5 < big.fee_bps < 100
    assert big.fee_amount == fee_tokens(2_000 * 10**9, big.fee_bps)
    # Withdrawing SOL moves it away from the target too.
    out = q.quote_remove_liquidity(custodies, SOL_KEY, 300_000 * USD, 50_000 * USD)
    assert 5 < out.fee_bps < 100
    tiny = replace(sol, pricing=replace(PRICING_250X, min_liquidity_deposit_usd=200 * USD))
    with raises_program("DepositTooSmall"):
        q.quote_add_liquidity([q.PricedCustody(tiny, SOL_PRICES)], SOL_KEY, 0, 10**9)


def _two_step_sol(insurance_balance: int = 0) -> q.CustodyState:
    return replace(
        sol_custody(),
        liquidation=TWO_STEP_LIQUIDATION,
        insurance=q.InsuranceFund(balance=insurance_balance),
    )


def test_two_step_ladder_partial_then_full() -> None:
    sol = _two_step_sol()
    # Margin just under the maintenance margin but above half of it: step 0 closes 50 %.
    position = replace(LONG_POSITION, unpaid_borrow_fee_usd=0, borrow_index_snapshot=4_444_441_200)
    mmr = q.maintenance_margin_bps(sol)
    prices = q.Prices.of(13_600_000_000, -8)  # $136: margin ~$9 of $12
    step = q.position_liquidation_step(position, sol, prices, sol, prices)
    assert step == 0
    a = q.liquidation_amounts(position, sol, prices, sol, prices, 0)
    assert (a.close_bps, a.discount_bps, a.full) == (5_000, 25, False)
    assert a.quote.auto_close_fee_usd == 2 * USD
    assert a.owner_amount == 0
    assert a.retained_amount == a.quote.payout_amount - a.discount_amount
    assert a.reward_amount + a.insurance_amount + a.protocol_amount == a.discount_amount
    assert a.insurance_amount == mul_div_floor_u64(a.discount_amount, 2_000, BPS_DENOMINATOR)
    result = q.liquidate(position, sol, prices, sol, prices, T0, 0)
    rest = result.position
    assert rest is not None
    assert rest.size_usd == position.size_usd - a.quote.size_usd
    assert rest.collateral_amount == (
        position.collateral_amount - a.quote.collateral_amount + a.retained_amount
    )
    assert result.custody is result.collateral_custody  # a long: one account
    assert result.custody.insurance.balance == a.insurance_amount
    assert result.custody.longs.size_usd == sol.longs.size_usd - a.quote.size_usd
    # Deep below: the last step closes everything with the full discount.
    deep = q.Prices.of(13_550_000_000, -8)  # $135.50: margin ~$4 < $6
    assert q.position_liquidation_step(position, sol, deep, sol, deep) == 1
    final = q.liquidate(position, sol, deep, sol, deep, T0, 0)
    assert final.position is None
    assert final.amounts.discount_bps == 50
    assert final.amounts.retained_amount == 0
    assert (
        final.amounts.owner_amount
        == final.amounts.quote.payout_amount - final.amounts.discount_amount
    )
    assert mmr == 40


def test_insurance_cap_room_and_bad_debt_cover() -> None:
    sol = _two_step_sol(insurance_balance=10**8)  # 0.1 SOL
    room = q.insurance_room(sol, SOL_PRICES)
    value = token_to_usd_ceil(10**8, 9, SOL_PRICES.max())
    assert room == usd_to_token_floor(50 * USD - value, 9, SOL_PRICES.max())
    full = replace(sol, insurance=q.InsuranceFund(balance=10**9))  # $150 > the $50 cap
    assert q.insurance_room(full, SOL_PRICES) == 0
    covered, moved = q.cover_bad_debt(sol, 10 * USD, SOL_PRICES)
    assert moved == usd_to_token_ceil(10 * USD, 9, SOL_PRICES.min())
    assert covered.insurance.bad_debt_covered_usd == 10 * USD
    assert covered.assets.owned == sol.assets.owned + moved
    short, moved = q.cover_bad_debt(sol, 1_000 * USD, SOL_PRICES)  # more than the fund holds
    assert moved == 10**8
    assert short.insurance.balance == 0
    covered_usd = token_to_usd_floor(10**8, 9, SOL_PRICES.min())
    assert short.insurance.bad_debt_covered_usd == covered_usd
    assert short.insurance.bad_debt_uncovered_usd == 1_000 * USD - covered_usd
    assert q.cover_bad_debt(sol, 0, SOL_PRICES) == (sol, 0)
    grown = q.add_to_insurance(sol, 5)
    assert (grown.insurance.balance, grown.insurance.total_inflow) == (10**8 + 5, 5)


def test_close_position_settlement_covers_bad_debt_from_the_fund() -> None:
    sol, usdc = sol_custody(), replace(usdc_custody(), insurance=q.InsuranceFund(balance=10**8))
    result = q.close_position(
        SHORT_POSITION, sol, SOL_UP, usdc, USDC_PRICES, T0, BPS_DENOMINATOR, 0
    )
    assert result.position is None
    assert result.quote.bad_debt_usd > 0
    assert result.covered_amount == min(
        10**8, usd_to_token_ceil(result.quote.bad_debt_usd, 6, USDC_PRICES.min())
    )
    assert result.collateral_custody.insurance.balance == 10**8 - result.covered_amount
    assert result.custody.shorts.open_positions == 0
    with raises_program("TradeTooSmall"):  # a partial close may not leave a dust position
        q.close_position(
            SHORT_POSITION,
            replace(sol, pricing=replace(PRICING_250X, min_trade_size_usd=4_000 * USD)),
            SOL_DOWN,
            usdc,
            USDC_PRICES,
            T0,
            5_000,
            0,
        )
    with raises_program("PriceLimitExceeded"):
        q.close_position(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, T0, 5_000, 0, price_limit=10**15)
    half = q.close_position(LONG_POSITION, sol, SOL_UP, sol, SOL_UP, T0, 5_000, 0)
    assert half.position == q.close_position_remainder(LONG_POSITION, half.quote, half.custody)
