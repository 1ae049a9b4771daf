"""Exact Python mirror of the program's integer money math (``programs/perpool/src/math``).

Every function here is the one-to-one twin of the Rust function with the same name: same
arguments (in the same units), same rounding, and a :class:`MathError` of the same kind exactly
where Rust returns ``Err``. Python ints are unbounded, so the u64/u128 limits the program hits
are checked explicitly; there are no floats anywhere. The business quotes built on top of these
(open/close/LP/swap/AUM) live in :mod:`perpool.quotes`.

Risk engine (``payoff.rs``, ``slippage.rs``, ``funding.rs``, ``liquidity_fee.rs``,
``liquidation_steps.rs``): payoff prices, price impact, funding rate and indices, the dynamic
LP fee and the liquidation ladder, mirrored with the same names.

Units (DESIGN §4, ``math/mod.rs``):

=====================  ===============================================================
USD amount             int (u64), 6 decimals: ``$1 == USD_ONE == 1_000_000``
basis points           int (u64), ``BPS_DENOMINATOR == 10_000`` is 100 %
rate / fraction        int (u64), 9 decimals: ``RATE_ONE == 1_000_000_000``
borrow index           int (u128), hourly rate x seconds: ``INDEX_ONE == RATE_ONE * 3_600``
oracle price           :class:`OraclePrice` ``(price, exponent)``: ``price * 10**exponent`` USD
stored (entry) price   int (u64), 9 decimals (``PRICE_DECIMALS``)
token amount           int (u64), mint base units; ``decimals`` is a u8
LP amount              int (u64), ``LP_DECIMALS == 6`` (1 LP == $1 at the first deposit)
leverage               int (u64) in bps: 250x == 2_500_000
=====================  ===============================================================

Errors:

- :class:`MathError` — the program would fail. ``exc.kind`` is the Rust ``MathError`` variant
  (:class:`MathErrorKind`), ``exc.program_error`` the ``PerpoolError`` name the program reports
  for it (``"MathOverflow"``, ``"DivisionByZero"`` or ``"InvalidCalculationInput"``).
- :class:`RangeError` (a ``ValueError``) — an argument the Rust type could not even hold (a
  negative amount, a u64 above ``U64_MAX``, an exponent outside i32). That is a bug in the
  caller, not a program error, so it is deliberately a different exception.

Example::

    from perpool.math import OraclePrice, token_to_usd_floor, usd_to_token_ceil

    sol = OraclePrice(15_025, -2)                       # $150.25
    token_to_usd_floor(2_000_000_000, 9, sol)           # 300_500_000 ($300.50)
    usd_to_token_ceil(1_000_000, 9, sol)                # 6_655_575 lamports for $1
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from math import isqrt as _isqrt
from typing import Final

# --- constants (math/mod.rs) -------------------------------------------------------------------

USD_DECIMALS: Final = 6
USD_ONE: Final = 1_000_000
BPS_DENOMINATOR: Final = 10_000
RATE_DECIMALS: Final = 9
RATE_ONE: Final = 1_000_000_000
PRICE_DECIMALS: Final = 9
LP_DECIMALS: Final = 6
SECONDS_PER_HOUR: Final = 3_600

# Integer type bounds the program's arithmetic lives in.
U8_MAX: Final = 2**8 - 1
U32_MAX: Final = 2**32 - 1
U64_MAX: Final = 2**64 - 1
U128_MAX: Final = 2**128 - 1
I32_MIN: Final = -(2**31)
I32_MAX: Final = 2**31 - 1
I64_MIN: Final = -(2**63)
I64_MAX: Final = 2**63 - 1
I128_MIN: Final = -(2**127)
I128_MAX: Final = 2**127 - 1

#: Largest ``k`` with ``10**k <= U128_MAX``.
MAX_POW10_U128: Final = 38
# 10^0 ..= 10^38: every power of ten the program can hold (a table also keeps the types exact).
_POW10: Final[tuple[int, ...]] = tuple(10**k for k in range(MAX_POW10_U128 + 1))


# --- errors ------------------------------------------------------------------------------------


class MathErrorKind(Enum):
    """The Rust ``MathError`` variants; the value is the Rust variant name."""

    OVERFLOW = "Overflow"
    DIVISION_BY_ZERO = "DivisionByZero"
    INVALID_INPUT = "InvalidInput"


_MESSAGES: Final = {
    MathErrorKind.OVERFLOW: "math overflow",
    MathErrorKind.DIVISION_BY_ZERO: "division by zero",
    MathErrorKind.INVALID_INPUT: "invalid math input",
}


class MathError(Exception):
    """The program's math returned ``Err(kind)`` for these inputs."""

    def __init__(self, kind: MathErrorKind) -> None:
        super().__init__(_MESSAGES[kind])
        self.kind = kind

    @property
    def program_error(self) -> str:
        """The ``PerpoolError`` variant the program turns this into (``error.rs`` ``From``)."""
        if self.kind is MathErrorKind.DIVISION_BY_ZERO:
            return "DivisionByZero"
        if self.kind is MathErrorKind.INVALID_INPUT:
            return "InvalidCalculationInput"
        return "MathOverflow"

    def __repr__(self) -> str:
        return f"MathError({self.kind.value})"


class RangeError(ValueError):
    """An argument outside the Rust integer type it stands for (a caller bug)."""


def _overflow() -> MathError:
    return MathError(MathErrorKind.OVERFLOW)


def _div_zero() -> MathError:
    return MathError(MathErrorKind.DIVISION_BY_ZERO)


def _invalid() -> MathError:
    return MathError(MathErrorKind.INVALID_INPUT)


def _in_range(value: int, low: int, high: int, type_name: str) -> int:
    # `bool` is an int subclass; a True where an amount belongs is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RangeError(f"{value!r} is not an integer ({type_name})")
    if not low <= value <= high:
        raise RangeError(f"{value} does not fit {type_name}")
    return value


def check_u8(value: int) -> int:
    return _in_range(value, 0, U8_MAX, "u8")


def check_u32(value: int) -> int:
    return _in_range(value, 0, U32_MAX, "u32")


def check_u64(value: int) -> int:
    return _in_range(value, 0, U64_MAX, "u64")


def check_u128(value: int) -> int:
    return _in_range(value, 0, U128_MAX, "u128")


def check_i32(value: int) -> int:
    return _in_range(value, I32_MIN, I32_MAX, "i32")


def check_i64(value: int) -> int:
    return _in_range(value, I64_MIN, I64_MAX, "i64")


def check_i128(value: int) -> int:
    return _in_range(value, I128_MIN, I128_MAX, "i128")


# --- checked primitives (math/checked.rs) ------------------------------------------------------


def _div_round(n: int, d: int, ceil: bool) -> int:
    q, r = divmod(n, d)
    return q + 1 if ceil and r else q


def _mul_div(a: int, b: int, c: int, ceil: bool) -> int:
    # Rust checks the divisor before the product, so a zero divisor wins over an overflow.
    if c == 0:
        raise _div_zero()
    product = a * b
    if product > U128_MAX:
        raise _overflow()
    return _div_round(product, c, ceil)


def mul_div_floor(a: int, b: int, c: int) -> int:
    """``floor(a * b / c)`` on u128; ``DivisionByZero`` if ``c == 0``, ``Overflow`` if ``a * b``
    exceeds u128."""
    return _mul_div(check_u128(a), check_u128(b), check_u128(c), ceil=False)


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """``ceil(a * b / c)`` on u128; errors as :func:`mul_div_floor`."""
    return _mul_div(check_u128(a), check_u128(b), check_u128(c), ceil=True)


def mul_div_floor_u64(a: int, b: int, c: int) -> int:
    """``floor(a * b / c)`` for u64 operands; ``Overflow`` when the result exceeds u64."""
    return to_u64(_mul_div(check_u64(a), check_u64(b), check_u64(c), ceil=False))


def mul_div_ceil_u64(a: int, b: int, c: int) -> int:
    """``ceil(a * b / c)`` for u64 operands; errors as :func:`mul_div_floor_u64`."""
    return to_u64(_mul_div(check_u64(a), check_u64(b), check_u64(c), ceil=True))


def to_u64(value: int) -> int:
    """Narrow a u128 to u64 without truncation (``Overflow`` if it does not fit)."""
    if check_u128(value) > U64_MAX:
        raise _overflow()
    return value


def pow10(exp: int) -> int:
    """``10**exp`` as u128; ``Overflow`` beyond ``10**38``."""
    if check_u32(exp) > MAX_POW10_U128:
        raise _overflow()
    return _POW10[exp]


def mul_pow10(value: int, exp: int) -> int:
    """``value * 10**exp`` exactly; zero stays zero for any ``exp``."""
    check_u128(value)
    check_u32(exp)
    if value == 0:
        return 0
    product = value * pow10(exp)
    if product > U128_MAX:
        raise _overflow()
    return product


def _div_pow10(value: int, exp: int, ceil: bool) -> int:
    # Beyond 10^38 the divisor exceeds every u128: the quotient is in [0, 1).
    if exp > MAX_POW10_U128:
        return 1 if ceil and value != 0 else 0
    return _div_round(value, _POW10[exp], ceil)


def div_pow10_floor(value: int, exp: int) -> int:
    """``floor(value / 10**exp)``; infallible (0 for ``exp > 38``)."""
    return _div_pow10(check_u128(value), check_u32(exp), ceil=False)


def div_pow10_ceil(value: int, exp: int) -> int:
    """``ceil(value / 10**exp)``; infallible (1 for a non-zero value and ``exp > 38``)."""
    return _div_pow10(check_u128(value), check_u32(exp), ceil=True)


def _scale_pow10(value: int, shift: int, ceil: bool) -> int:
    """``value * 10**shift`` (exact, may overflow) or, for a negative shift, a rounded division.

    Rust clamps the shift to u32 before using it; any clamped shift is far beyond 38 either
    way, so clamping here gives identical results.
    """
    if shift >= 0:
        return mul_pow10(value, min(shift, U32_MAX))
    return _div_pow10(value, min(-shift, U32_MAX), ceil)


# --- oracle prices (math/price.rs) -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class OraclePrice:
    """``price * 10**exponent`` USD per whole token (Pyth style; ``price`` u64, ``exponent``
    i32). Equality, ordering and hashing compare the *value*: ``OraclePrice(1, 0) ==
    OraclePrice(10, -1)``."""

    price: int
    exponent: int

    def __post_init__(self) -> None:
        check_u64(self.price)
        check_i32(self.exponent)

    @classmethod
    def from_price_9dp(cls, price_9dp: int) -> OraclePrice:
        """A stored 9-decimal price viewed as an oracle price (exact)."""
        return cls(price_9dp, -PRICE_DECIMALS)

    def _scale_to_exponent(self, target_exponent: int, ceil: bool) -> OraclePrice:
        shift = self.exponent - check_i32(target_exponent)
        return OraclePrice(to_u64(_scale_pow10(self.price, shift, ceil)), target_exponent)

    def scale_to_exponent_floor(self, target_exponent: int) -> OraclePrice:
        """Same value at ``target_exponent``, mantissa rounded down; ``Overflow`` past u64."""
        return self._scale_to_exponent(target_exponent, ceil=False)

    def scale_to_exponent_ceil(self, target_exponent: int) -> OraclePrice:
        """Same value at ``target_exponent``, mantissa rounded up; ``Overflow`` past u64."""
        return self._scale_to_exponent(target_exponent, ceil=True)

    def to_price_9dp_floor(self) -> int:
        """Price with 9 decimals, rounded down (a long's exit, a short's entry)."""
        return self.scale_to_exponent_floor(-PRICE_DECIMALS).price

    def to_price_9dp_ceil(self) -> int:
        """Price with 9 decimals, rounded up (a long's entry, a short's exit)."""
        return self.scale_to_exponent_ceil(-PRICE_DECIMALS).price

    def is_zero(self) -> bool:
        return self.price == 0

    def cmp_value(self, other: OraclePrice) -> int:
        """-1, 0 or 1 as the value of ``self`` is below, equal to or above ``other``'s."""
        if self.price == 0 or other.price == 0:
            return _sign(self.price - other.price)
        diff = self.exponent - other.exponent
        # Same shortcut as Rust: u64::MAX < 10^20, so a 20+ decimal shift decides on its own
        # (and keeps us from building 10^(2^31)-sized ints for extreme exponents).
        if diff >= 20:
            return 1
        if diff <= -20:
            return -1
        if diff >= 0:
            return _sign(self.price * _POW10[diff] - other.price)
        return _sign(self.price - other.price * _POW10[-diff])

    def min_value(self, other: OraclePrice) -> OraclePrice:
        """The lower of two prices by value (``self`` on a tie)."""
        return other if self.cmp_value(other) > 0 else self

    def max_value(self, other: OraclePrice) -> OraclePrice:
        """The higher of two prices by value (``self`` on a tie)."""
        return other if self.cmp_value(other) < 0 else self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OraclePrice):
            return NotImplemented
        return self.cmp_value(other) == 0

    def __hash__(self) -> int:
        # Equal values must hash alike: normalise the mantissa by stripping trailing zeros.
        price, exponent = self.price, self.exponent
        if price == 0:
            return hash(0)
        while price % 10 == 0:
            price //= 10
            exponent += 1
        return hash((price, exponent))

    def __lt__(self, other: OraclePrice) -> bool:
        return self.cmp_value(other) < 0

    def __le__(self, other: OraclePrice) -> bool:
        return self.cmp_value(other) <= 0

    def __gt__(self, other: OraclePrice) -> bool:
        return self.cmp_value(other) > 0

    def __ge__(self, other: OraclePrice) -> bool:
        return self.cmp_value(other) >= 0


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _usd_shift(decimals: int, price: OraclePrice) -> int:
    """Decimal shift from ``amount * price`` to USD units: ``exponent + 6 - decimals``."""
    return price.exponent + USD_DECIMALS - check_u8(decimals)


def _token_to_usd(amount: int, decimals: int, price: OraclePrice, ceil: bool) -> int:
    # The product of two u64 is exact in u128; one rounded shift.
    product = check_u64(amount) * price.price
    return to_u64(_scale_pow10(product, _usd_shift(decimals, price), ceil))


def token_to_usd_floor(amount: int, decimals: int, price: OraclePrice) -> int:
    """USD (6 dp) of ``amount`` base units, rounded down (value credited to a user)."""
    return _token_to_usd(amount, decimals, price, ceil=False)


def token_to_usd_ceil(amount: int, decimals: int, price: OraclePrice) -> int:
    """USD (6 dp) of ``amount`` base units, rounded up (value owed by a user, AUM high)."""
    return _token_to_usd(amount, decimals, price, ceil=True)


def _usd_to_token(usd: int, decimals: int, price: OraclePrice, ceil: bool) -> int:
    check_u64(usd)
    if price.price == 0:
        raise _div_zero()
    shift = _usd_shift(decimals, price)
    if shift <= 0:
        # Scale the numerator up; if that overflows u128 the quotient exceeds u64 anyway.
        numerator = _scale_pow10(usd, -shift, ceil)
        return to_u64(_mul_div(numerator, 1, price.price, ceil))
    try:
        divisor = _scale_pow10(price.price, shift, ceil)
    except MathError:
        # A divisor beyond u128 exceeds the numerator: the quotient is in (0, 1).
        return 1 if ceil and usd != 0 else 0
    return to_u64(_mul_div(usd, 1, divisor, ceil))


def usd_to_token_floor(usd: int, decimals: int, price: OraclePrice) -> int:
    """Base units worth ``usd``, rounded down (tokens paid out); ``DivisionByZero`` at price 0."""
    return _usd_to_token(usd, decimals, price, ceil=False)


def usd_to_token_ceil(usd: int, decimals: int, price: OraclePrice) -> int:
    """Base units worth ``usd``, rounded up (tokens a user must bring)."""
    return _usd_to_token(usd, decimals, price, ceil=True)


def usd_to_token_floor_saturating(usd: int, decimals: int, price: OraclePrice) -> int:
    """:func:`usd_to_token_floor` for an amount capped right after by what an account holds:
    a result beyond u64 saturates to ``U64_MAX`` instead of raising ``Overflow``."""
    return _saturate(lambda: usd_to_token_floor(usd, decimals, price))


def usd_to_token_ceil_saturating(usd: int, decimals: int, price: OraclePrice) -> int:
    """:func:`usd_to_token_ceil`, saturating like :func:`usd_to_token_floor_saturating`."""
    return _saturate(lambda: usd_to_token_ceil(usd, decimals, price))


def _saturate(convert: Callable[[], int]) -> int:
    try:
        return convert()
    except MathError as exc:
        if exc.kind is MathErrorKind.OVERFLOW:
            return U64_MAX
        raise


def price_within_confidence(price: int, conf: int, max_error_bps: int) -> bool:
    """``conf / price <= max_error_bps / 10_000`` exactly, inclusive; a zero price fails."""
    check_u64(price)
    check_u64(conf)
    check_u64(max_error_bps)
    if price == 0:
        return False
    return conf * BPS_DENOMINATOR <= max_error_bps * price


# --- fees (math/fees.rs) -----------------------------------------------------------------------


def fee_usd(size_usd: int, fee_bps: int) -> int:
    """``ceil(size * bps / 10_000)``: never zero for a non-zero fee on a non-zero size."""
    return mul_div_ceil_u64(size_usd, fee_bps, BPS_DENOMINATOR)


def fee_tokens(amount: int, fee_bps: int) -> int:
    """``ceil(amount * bps / 10_000)`` in token base units."""
    return mul_div_ceil_u64(amount, fee_bps, BPS_DENOMINATOR)


def fee_usd_with_minimum(size_usd: int, fee_bps: int, min_fee_usd: int) -> int:
    """``max(min_fee_usd, fee_usd(size_usd, fee_bps))``."""
    return max(fee_usd(size_usd, fee_bps), check_u64(min_fee_usd))


@dataclass(frozen=True)
class FeeSplit:
    lp_share: int
    protocol_share: int


def split_fee(fee: int, protocol_share_bps: int) -> FeeSplit:
    """Protocol share floored, LPs get the rest (the parts sum to ``fee`` exactly);
    ``InvalidInput`` for a share above 100 %."""
    check_u64(fee)
    if check_u64(protocol_share_bps) > BPS_DENOMINATOR:
        raise _invalid()
    protocol_share = mul_div_floor_u64(fee, protocol_share_bps, BPS_DENOMINATOR)
    return FeeSplit(lp_share=fee - protocol_share, protocol_share=protocol_share)


# --- borrow fees (math/borrow.rs) --------------------------------------------------------------


def _utilization(locked: int, owned: int, ceil: bool) -> int:
    if check_u64(locked) > check_u64(owned):
        raise _invalid()
    if owned == 0:
        return 0
    if ceil:
        return mul_div_ceil_u64(locked, RATE_ONE, owned)
    return mul_div_floor_u64(locked, RATE_ONE, owned)


def utilization_floor(locked: int, owned: int) -> int:
    """``floor(locked * 1e9 / owned)`` (display only), 0 when nothing is owned;
    ``InvalidInput`` if ``locked > owned``."""
    return _utilization(locked, owned, ceil=False)


def utilization_ceil(locked: int, owned: int) -> int:
    """``ceil(locked * 1e9 / owned)``: the rate and the utilization cap use this."""
    return _utilization(locked, owned, ceil=True)


def hourly_borrow_rate(
    utilization: int,
    base_rate: int,
    slope1: int,
    slope2: int,
    optimal_utilization: int,
) -> int:
    """Kinked curve ``base + slope1 * min(u, opt) / opt + slope2 * max(0, u - opt) / (1e9 -
    opt)``, each term rounded up; ``InvalidInput`` if ``u`` or ``opt`` exceed 1e9."""
    for value in (utilization, base_rate, slope1, slope2, optimal_utilization):
        check_u64(value)
    if utilization > RATE_ONE or optimal_utilization > RATE_ONE:
        raise _invalid()
    if utilization >= optimal_utilization:
        first = slope1  # the first segment is complete (also covers opt == 0)
    else:
        first = mul_div_ceil_u64(slope1, utilization, optimal_utilization)
    if utilization <= optimal_utilization:
        second = 0
    else:
        second = mul_div_ceil_u64(
            slope2, utilization - optimal_utilization, RATE_ONE - optimal_utilization
        )
    total = base_rate + first + second
    if total > U64_MAX:
        raise _overflow()
    return total


INDEX_ONE: Final = RATE_ONE * SECONDS_PER_HOUR
"""Scale of the cumulative borrow index: hourly rate (1e9 = 100%) x seconds; one hour at 100 %
per hour adds ``INDEX_ONE``."""


def accrue_index(index: int, hourly_rate: int, elapsed_secs: int) -> int:
    """``index + hourly_rate * elapsed`` (exact; no rounding); ``Overflow`` past u128."""
    check_u128(index)
    increment = check_u64(hourly_rate) * check_u64(elapsed_secs)
    if index + increment > U128_MAX:
        raise _overflow()
    return index + increment


def borrow_fee_usd(size_usd: int, index_now: int, index_snapshot: int) -> int:
    """``ceil((index_now - snapshot) * size / INDEX_ONE)``; ``InvalidInput`` if the snapshot is
    ahead."""
    check_u64(size_usd)
    delta = check_u128(index_now) - check_u128(index_snapshot)
    if delta < 0:
        raise _invalid()
    return to_u64(mul_div_ceil(delta, size_usd, INDEX_ONE))


# --- PnL (math/pnl.rs) -------------------------------------------------------------------------


class Side(Enum):
    """Position direction; the value is the IDL variant name (``Side::Long``)."""

    LONG = "Long"
    SHORT = "Short"


@dataclass(frozen=True)
class Pnl:
    """At most one field is non-zero."""

    profit_usd: int = 0
    loss_usd: int = 0


def entry_price_9dp(side: Side, price: OraclePrice) -> int:
    """Stored entry price: a long enters high (ceil), a short low (floor)."""
    return price.to_price_9dp_ceil() if side is Side.LONG else price.to_price_9dp_floor()


def exit_price_9dp(side: Side, price: OraclePrice) -> int:
    """Exit/valuation price: a long exits low (floor), a short high (ceil)."""
    return price.to_price_9dp_floor() if side is Side.LONG else price.to_price_9dp_ceil()


def position_pnl(side: Side, entry_price_9dp: int, exit_price_9dp: int, size_usd: int) -> Pnl:
    """Profit ``floor(size * |move| / entry)`` or loss ``ceil(...)``; ``DivisionByZero`` on a
    zero entry price, ``Overflow`` past u64."""
    check_u64(entry_price_9dp)
    check_u64(exit_price_9dp)
    check_u64(size_usd)
    if entry_price_9dp == 0:
        raise _div_zero()
    price_rose = exit_price_9dp >= entry_price_9dp
    move = abs(exit_price_9dp - entry_price_9dp)
    trader_gains = price_rose if side is Side.LONG else not price_rose
    if trader_gains:
        return Pnl(profit_usd=mul_div_floor_u64(size_usd, move, entry_price_9dp))
    return Pnl(loss_usd=mul_div_ceil_u64(size_usd, move, entry_price_9dp))


# --- margin and liquidation (math/liquidation.rs) ----------------------------------------------


def margin_usd(collateral_usd: int, profit_usd: int, loss_usd: int, fees_usd: int) -> int:
    """``collateral + profit - loss - fees`` as a signed (i128) value; may be negative."""
    for value in (collateral_usd, profit_usd, loss_usd, fees_usd):
        check_u64(value)
    return collateral_usd + profit_usd - loss_usd - fees_usd


def maintenance_margin_usd(size_usd: int, maintenance_margin_bps: int) -> int:
    """``ceil(size * bps / 10_000)``: the pool requires at least the exact fraction."""
    return mul_div_ceil_u64(size_usd, maintenance_margin_bps, BPS_DENOMINATOR)


def is_liquidatable(
    collateral_usd: int,
    profit_usd: int,
    loss_usd: int,
    fees_usd: int,
    size_usd: int,
    maintenance_margin_bps: int,
) -> bool:
    """``margin < threshold`` (strict): exactly at the threshold survives."""
    margin = margin_usd(collateral_usd, profit_usd, loss_usd, fees_usd)
    return margin < maintenance_margin_usd(size_usd, maintenance_margin_bps)


def maintenance_margin_bps_for_max_leverage(max_leverage_bps: int) -> int:
    """``ceil(1e8 / max_leverage_bps)``: 250x (2_500_000) -> 40 bps; ``DivisionByZero`` at 0."""
    return mul_div_ceil_u64(BPS_DENOMINATOR, BPS_DENOMINATOR, max_leverage_bps)


def leverage_bps(size_usd: int, margin_usd: int) -> int:
    """``ceil(size * 10_000 / margin)``; saturates at ``U64_MAX`` ("infinite") for a margin
    ``<= 0`` or a result beyond u64 — it is only ever compared against a maximum."""
    check_u64(size_usd)
    if check_i128(margin_usd) <= 0:
        return U64_MAX
    return min(_div_round(size_usd * BPS_DENOMINATOR, margin_usd, ceil=True), U64_MAX)


def liquidation_price(
    side: Side,
    entry_price_9dp: int,
    size_usd: int,
    collateral_usd: int,
    fees_usd: int,
    maintenance_margin_bps: int,
) -> int:
    """9-dp price where margin meets the maintenance margin, rounded toward earlier liquidation
    (long up, short down). A long returns 0 when no positive price liquidates it, a short 0
    when every price does; a value beyond u64 saturates at ``U64_MAX``. ``InvalidInput`` for a
    zero size, ``Overflow`` if ``entry * factor`` exceeds u128."""
    check_u64(entry_price_9dp)
    check_u64(collateral_usd)
    check_u64(fees_usd)
    if check_u64(size_usd) == 0:
        raise _invalid()
    threshold = maintenance_margin_usd(size_usd, maintenance_margin_bps)
    if side is Side.LONG:
        factor = size_usd + threshold + fees_usd - collateral_usd
    else:
        factor = size_usd + collateral_usd - fees_usd - threshold
    if factor < 0:
        return 0
    price = _mul_div(entry_price_9dp, factor, size_usd, ceil=side is Side.LONG)
    return min(price, U64_MAX)


# --- close settlement (math/close.rs) ----------------------------------------------------------


@dataclass(frozen=True)
class CloseAmounts:
    """What closing (a slice of) a position settles to, in USD units."""

    payout_usd: int = 0
    profit_usd: int = 0
    loss_usd: int = 0
    fee_usd: int = 0
    bad_debt_usd: int = 0


def close_amounts(
    side: Side,
    size_usd: int,
    collateral_usd: int,
    entry_price_9dp: int,
    exit_price_9dp: int,
    fees_usd: int,
) -> CloseAmounts:
    """``payout = max(0, collateral + profit - loss - fees)``, ``bad_debt`` the shortfall;
    ``Overflow`` if either exceeds u64."""
    pnl = position_pnl(side, entry_price_9dp, exit_price_9dp, size_usd)
    net = margin_usd(collateral_usd, pnl.profit_usd, pnl.loss_usd, fees_usd)
    payout, bad_debt = (net, 0) if net >= 0 else (0, -net)
    if payout > U64_MAX or bad_debt > U64_MAX:
        raise _overflow()
    return CloseAmounts(
        payout_usd=payout,
        profit_usd=pnl.profit_usd,
        loss_usd=pnl.loss_usd,
        fee_usd=fees_usd,
        bad_debt_usd=bad_debt,
    )


@dataclass(frozen=True)
class BpsSplit:
    """``closed + remaining == amount`` exactly."""

    closed: int
    remaining: int


def _split(amount: int, close_bps: int, ceil: bool) -> BpsSplit:
    check_u64(amount)
    if check_u64(close_bps) > BPS_DENOMINATOR:
        raise _invalid()
    if ceil:
        closed = mul_div_ceil_u64(amount, close_bps, BPS_DENOMINATOR)
    else:
        closed = mul_div_floor_u64(amount, close_bps, BPS_DENOMINATOR)
    return BpsSplit(closed=closed, remaining=amount - closed)


def split_bps_floor(amount: int, close_bps: int) -> BpsSplit:
    """``closed = floor(amount * bps / 10_000)`` (what the trader takes out, size closed)."""
    return _split(amount, close_bps, ceil=False)


def split_bps_ceil(amount: int, close_bps: int) -> BpsSplit:
    """``closed = ceil(amount * bps / 10_000)`` (what the trader owes with the slice)."""
    return _split(amount, close_bps, ceil=True)


@dataclass(frozen=True)
class PartialClose:
    size: BpsSplit
    collateral: BpsSplit
    entry_fee: BpsSplit


def partial_close(
    size_usd: int, collateral_usd: int, entry_fee_usd: int, close_bps: int
) -> PartialClose:
    """Divide a position for closing ``close_bps``; ``InvalidInput`` for 0 or > 10_000 bps, or
    when the closed size rounds to zero."""
    if check_u64(close_bps) == 0:
        raise _invalid()
    size = split_bps_floor(size_usd, close_bps)
    if size.closed == 0:
        raise _invalid()
    return PartialClose(
        size=size,
        collateral=split_bps_floor(collateral_usd, close_bps),
        entry_fee=split_bps_ceil(entry_fee_usd, close_bps),
    )


# --- LP pricing (math/lp.rs) -------------------------------------------------------------------


class Valuation(Enum):
    """``HIGH`` = max(spot, ema) rounded up (LP mint), ``LOW`` = min rounded down (LP burn),
    ``SPOT`` = spot rounded down (reported values)."""

    HIGH = "High"
    LOW = "Low"
    SPOT = "Spot"


def custody_value_usd(
    amount: int, decimals: int, spot: OraclePrice, ema: OraclePrice, valuation: Valuation
) -> int:
    """USD value of ``amount`` base units of one custody under ``valuation``."""
    if valuation is Valuation.HIGH:
        return token_to_usd_ceil(amount, decimals, spot.max_value(ema))
    if valuation is Valuation.SPOT:
        return token_to_usd_floor(amount, decimals, spot)
    return token_to_usd_floor(amount, decimals, spot.min_value(ema))


LOCKED_LP_SUPPLY = 1_000_000
"""LP units the first deposit pays for and nobody holds (one LP, $1 then): they count in every
price, so a lone LP cannot shrink the supply that prices the LP token below one LP."""


def pricing_supply(lp_supply: int) -> int:
    """The supply that prices the LP token: minted supply + ``LOCKED_LP_SUPPLY`` (0 if none)."""
    if check_u64(lp_supply) == 0:
        return 0
    total = lp_supply + LOCKED_LP_SUPPLY
    if total > U64_MAX:
        raise _overflow()
    return total


def lp_to_mint(deposit_usd: int, aum_usd: int, lp_supply: int) -> int:
    """``deposit - LOCKED_LP_SUPPLY`` (at least 0) for the first deposit (1 LP = $1), else
    ``floor(deposit * (supply + locked) / aum)``; ``InvalidInput`` if LP tokens exist but the
    AUM is zero."""
    check_u64(deposit_usd)
    check_u64(aum_usd)
    if check_u64(lp_supply) == 0:
        return max(0, deposit_usd - LOCKED_LP_SUPPLY)
    if aum_usd == 0:
        raise _invalid()
    return mul_div_floor_u64(deposit_usd, pricing_supply(lp_supply), aum_usd)


def lp_to_mint_after_fee(deposit_usd: int, fee_usd: int, aum_usd: int, lp_supply: int) -> int:
    """LP for a deposit worth ``deposit_usd`` after an LP fee worth ``fee_usd`` that stays in the
    pool: ``floor(deposit * (supply + locked) / (aum + fee))``, so the whole fee accrues to the
    LP tokens that already exist; the first deposit as in ``lp_to_mint``; ``InvalidInput`` if
    LP tokens exist but the AUM is zero."""
    check_u64(deposit_usd)
    check_u64(fee_usd)
    check_u64(aum_usd)
    if check_u64(lp_supply) == 0:
        return lp_to_mint(deposit_usd, aum_usd, 0)
    if aum_usd == 0:
        raise _invalid()
    priced_against = aum_usd + fee_usd
    if priced_against > U64_MAX:
        raise _overflow()
    return lp_to_mint(deposit_usd, priced_against, lp_supply)


def usd_for_lp(lp_amount: int, aum_usd: int, lp_supply: int) -> int:
    """``floor(lp * aum / (supply + locked))``, or ``aum`` when burning the whole minted supply
    (the last LP out takes the locked LP's share); ``InvalidInput`` if nothing is minted,
    ``lp > supply`` or the AUM is zero."""
    check_u64(lp_amount)
    check_u64(aum_usd)
    check_u64(lp_supply)
    if lp_supply == 0 or lp_amount > lp_supply or aum_usd == 0:
        raise _invalid()
    return mul_div_floor_u64(lp_amount, aum_usd, redeeming_supply(lp_amount, lp_supply))


def redeeming_supply(lp_amount: int, lp_supply: int) -> int:
    """The supply a burn of ``lp_amount`` is priced against: ``pricing_supply``, or the minted
    supply alone when the burn is all of it."""
    if lp_amount == lp_supply:
        return check_u64(lp_supply)
    return pricing_supply(lp_supply)


def lp_token_price_usd(aum_usd: int, lp_supply: int) -> int:
    """USD (6 dp) of one whole LP token (priced with the locked LP), rounded down; $1 before
    the first mint."""
    check_u64(aum_usd)
    if check_u64(lp_supply) == 0:
        return USD_ONE
    return to_u64(mul_div_floor(pow10(LP_DECIMALS), aum_usd, pricing_supply(lp_supply)))


# --- payoff markets (math/payoff.rs) -----------------------------------------------------------


class PayoffFn(Enum):
    """Shape of a market's payoff; the value is the Rust (and IDL ``PayoffKind``) variant name."""

    SPOT = "Spot"
    LINEAR = "Linear"
    SQUARE = "Square"
    SQRT = "Sqrt"


def isqrt(n: int) -> int:
    """``floor(sqrt(n))`` for a u128, exact (Rust uses Newton's method; same result)."""
    return _isqrt(check_u128(n))


def payoff_price(payoff: PayoffFn, scale_9dp: int, price: OraclePrice) -> OraclePrice:
    """``payoff(P)`` as a 9-decimal price: ``k*P``, ``k*P**2`` or ``k*sqrt(P)`` with ``k`` in 9
    decimals, rounded down at each step. ``SPOT`` returns ``price`` unchanged (any ``k``);
    ``InvalidInput`` for ``k == 0`` on a payoff market, ``Overflow`` past u64."""
    check_u64(scale_9dp)
    if payoff is PayoffFn.SPOT:
        return price
    if scale_9dp == 0:
        raise _invalid()
    p = price.to_price_9dp_floor()
    if payoff is PayoffFn.SQUARE:
        shaped = mul_div_floor(p, p, RATE_ONE)  # P^2 in 9 dp
    elif payoff is PayoffFn.SQRT:
        # sqrt(p / 1e9) * 1e9 == sqrt(p * 1e9)
        product = p * RATE_ONE
        if product > U128_MAX:
            raise _overflow()
        shaped = _isqrt(product)
    else:
        shaped = p
    return OraclePrice.from_price_9dp(to_u64(mul_div_floor(shaped, scale_9dp, RATE_ONE)))


def max_profit_usd(size_usd: int, max_profit_bps: int) -> int:
    """The most positions of total size ``size_usd`` on a payoff market can win:
    ``ceil(size * max_profit_bps / 1e4)``, what each locks at open and the most the pool owes an
    open book. ``Overflow`` past u64."""
    return mul_div_ceil_u64(size_usd, max_profit_bps, BPS_DENOMINATOR)


# --- price impact (math/slippage.rs) -----------------------------------------------------------

#: Largest impact applied to one trade (10 %, 9 decimals).
MAX_PRICE_IMPACT: Final = RATE_ONE // 10


def price_impact(size_usd: int, liquidity_usd: int, a_bps: int, b_bps: int) -> int:
    """Impact as a 9-dp fraction of the price, ``ceil((A*x + B*x**2/1e9) / 1e4)`` with
    ``x = ceil(size * 1e9 / liquidity)`` (at most 1000x), capped at :data:`MAX_PRICE_IMPACT`.
    Zero when ``A == B == 0`` or the size is zero; the cap when there is no liquidity."""
    for value in (size_usd, liquidity_usd, a_bps, b_bps):
        check_u64(value)
    if (a_bps == 0 and b_bps == 0) or size_usd == 0:
        return 0
    if liquidity_usd == 0:
        return MAX_PRICE_IMPACT
    x = min(mul_div_ceil(size_usd, RATE_ONE, liquidity_usd), 1_000 * RATE_ONE)
    # Rust's saturating_mul/add; they cannot saturate with these bounds, but stay faithful.
    linear = min(x * a_bps, U128_MAX)
    quadratic = min(mul_div_ceil(x, x, RATE_ONE) * b_bps, U128_MAX)
    impact = mul_div_ceil(min(linear + quadratic, U128_MAX), 1, BPS_DENOMINATOR)
    return min(impact, MAX_PRICE_IMPACT)


def apply_impact(price_9dp: int, impact: int, up: bool) -> int:
    """``price * (1 + impact)`` rounded up (a buyer's price) or ``price * (1 - impact)``
    rounded down (a seller's); the impact is clamped to :data:`MAX_PRICE_IMPACT` first."""
    check_u64(price_9dp)
    impact = min(check_u64(impact), MAX_PRICE_IMPACT)
    if up:
        return to_u64(mul_div_ceil(price_9dp, RATE_ONE + impact, RATE_ONE))
    return to_u64(mul_div_floor(price_9dp, RATE_ONE - impact, RATE_ONE))


# --- funding (math/funding.rs) -----------------------------------------------------------------


def funding_rate(
    long_oi_usd: int, short_oi_usd: int, liquidity_usd: int, funding_c: int, max_rate: int
) -> int:
    """Signed hourly rate (9 dp, positive = longs pay): ``skew / (C * liquidity)`` rounded up
    in magnitude and capped at ``max_rate``; 0 when ``C == 0`` or the book is balanced, the cap
    when there is no liquidity. ``Overflow`` if the magnitude does not fit i64."""
    for value in (long_oi_usd, short_oi_usd, liquidity_usd, funding_c, max_rate):
        check_u64(value)
    if funding_c == 0 or long_oi_usd == short_oi_usd:
        return 0
    if liquidity_usd == 0:
        magnitude = max_rate
    else:
        skew = abs(long_oi_usd - short_oi_usd)
        magnitude = min(mul_div_ceil(skew, RATE_ONE, funding_c * liquidity_usd), max_rate)
    if magnitude > I64_MAX:
        raise _overflow()
    return magnitude if long_oi_usd > short_oi_usd else -magnitude


def _checked_i128(value: int) -> int:
    if not I128_MIN <= value <= I128_MAX:
        raise _overflow()
    return value


def accrue_funding(
    long_index: int,
    short_index: int,
    rate: int,
    elapsed_secs: int,
    long_oi_usd: int,
    short_oi_usd: int,
) -> tuple[int, int]:
    """The (long, short) funding indices after ``elapsed_secs`` at ``rate``: the heavy side's
    index rises by ``|rate| * elapsed`` exactly, the light side's falls by that times
    ``heavy_oi / light_oi`` rounded down (so receivers never get more than payers pay); with
    nobody on the light side the heavy side pays the pool."""
    check_i128(long_index)
    check_i128(short_index)
    check_i64(rate)
    for value in (elapsed_secs, long_oi_usd, short_oi_usd):
        check_u64(value)
    if rate == 0 or elapsed_secs == 0:
        return long_index, short_index
    paid = abs(rate) * elapsed_secs
    heavy_oi, light_oi = (long_oi_usd, short_oi_usd) if rate > 0 else (short_oi_usd, long_oi_usd)
    received = 0 if light_oi == 0 else mul_div_floor(paid, heavy_oi, light_oi)
    paid, received = _checked_i128(paid), _checked_i128(received)
    if rate > 0:
        return _checked_i128(long_index + paid), _checked_i128(short_index - received)
    return _checked_i128(long_index - received), _checked_i128(short_index + paid)


def funding_usd(size_usd: int, index_now: int, index_snapshot: int) -> int:
    """Funding a position of ``size_usd`` owes since its snapshot: positive = it pays (rounded
    up), negative = it receives (magnitude rounded down). ``Overflow`` past i64."""
    check_u64(size_usd)
    delta = _checked_i128(check_i128(index_now) - check_i128(index_snapshot))
    if delta >= 0:
        magnitude = mul_div_ceil(delta, size_usd, INDEX_ONE)
    else:
        magnitude = mul_div_floor(-delta, size_usd, INDEX_ONE)
    if magnitude > I64_MAX:
        raise _overflow()
    return magnitude if delta >= 0 else -magnitude


def funding_parts(funding_usd: int) -> tuple[int, int]:
    """A signed funding amount as ``(paid, received)``, both non-negative."""
    check_i64(funding_usd)
    return (funding_usd, 0) if funding_usd >= 0 else (0, -funding_usd)


# --- dynamic LP fee (math/liquidity_fee.rs) ----------------------------------------------------


def ratio_bps(value_usd: int, aum_usd: int) -> int:
    """Share (bps, rounded down) of the pool that ``value_usd`` is; 0 for an empty pool."""
    check_u64(value_usd)
    if check_u64(aum_usd) == 0:
        return 0
    return mul_div_floor_u64(value_usd, BPS_DENOMINATOR, aum_usd)


def liquidity_fee_bps(
    min_bps: int, max_bps: int, k_bps: int, target_bps: int, before_bps: int, after_bps: int
) -> int:
    """LP fee for a move of the custody's share from ``before`` to ``after``: ``min`` when it
    gets no farther from the target, else ``min + ceil((max - min) * d / (d + K))`` with ``d``
    the distance after. ``InvalidInput`` if ``max < min``."""
    for value in (min_bps, max_bps, k_bps, target_bps, before_bps, after_bps):
        check_u64(value)
    if max_bps < min_bps:
        raise _invalid()
    distance_before = abs(before_bps - target_bps)
    distance_after = abs(after_bps - target_bps)
    if distance_after <= distance_before:
        return min_bps
    denominator = distance_after + k_bps
    if denominator > U64_MAX:
        raise _overflow()
    return min_bps + mul_div_ceil_u64(max_bps - min_bps, distance_after, denominator)


# --- multi-step liquidation (math/liquidation_steps.rs) ----------------------------------------

MAX_STEPS: Final = 4


@dataclass(frozen=True)
class Step:
    """One rung: below ``margin_fraction_bps`` of the maintenance margin, close ``close_bps``."""

    margin_fraction_bps: int = 0
    close_bps: int = 0


def steps_are_valid(steps: Sequence[Step]) -> bool:
    """1..=MAX_STEPS steps, the first at exactly 10_000, fractions strictly falling and
    positive, close fractions in (0, 10_000], non-decreasing, the last one 10_000."""
    if not steps or len(steps) > MAX_STEPS:
        return False
    if steps[0].margin_fraction_bps != BPS_DENOMINATOR or steps[-1].close_bps != BPS_DENOMINATOR:
        return False
    if not all(s.margin_fraction_bps > 0 and 0 < s.close_bps <= BPS_DENOMINATOR for s in steps):
        return False
    return all(
        b.margin_fraction_bps < a.margin_fraction_bps and b.close_bps >= a.close_bps
        for a, b in pairwise(steps)
    )


def step_threshold_usd(size_usd: int, maintenance_bps: int, step: Step) -> int:
    """Margin (USD) below which ``step`` applies: ``ceil(size * mmr * fraction / 1e8)``."""
    check_u64(size_usd)
    numerator = check_u64(maintenance_bps) * check_u64(step.margin_fraction_bps)
    return to_u64(mul_div_ceil(size_usd, numerator, BPS_DENOMINATOR * BPS_DENOMINATOR))


def liquidation_step(
    margin_usd: int, size_usd: int, maintenance_bps: int, steps: Sequence[Step]
) -> int | None:
    """Index of the deepest step whose threshold ``margin_usd`` is strictly below; ``None``
    for a healthy position."""
    check_i128(margin_usd)
    deepest = None
    for index, step in enumerate(steps):
        if margin_usd < step_threshold_usd(size_usd, maintenance_bps, step):
            deepest = index
    return deepest


def step_discount_bps(full_discount_bps: int, index: int, count: int) -> int:
    """Liquidator discount at step ``index`` of ``count``: ``ceil(full * (index + 1) / count)``
    bps of the closed size; ``InvalidInput`` for an index outside the ladder."""
    check_u64(full_discount_bps)
    if count == 0 or not 0 <= index < count:
        raise _invalid()
    return mul_div_ceil_u64(full_discount_bps, index + 1, count)


@dataclass(frozen=True)
class DiscountSplit:
    """A liquidation discount (tokens): ``liquidator + insurance + protocol == discount``."""

    liquidator: int = 0
    insurance: int = 0
    protocol: int = 0


def split_discount(
    discount: int, insurance_fraction_bps: int, insurance_room: int
) -> DiscountSplit:
    """``insurance_fraction_bps`` of the discount (rounded down) is meant for the fund, which
    takes at most ``insurance_room``; the excess goes to the protocol, the rest to the
    liquidator. ``InvalidInput`` for a fraction above 100 %."""
    check_u64(discount)
    check_u64(insurance_room)
    if check_u64(insurance_fraction_bps) > BPS_DENOMINATOR:
        raise _invalid()
    for_fund = mul_div_floor_u64(discount, insurance_fraction_bps, BPS_DENOMINATOR)
    insurance = min(for_fund, insurance_room)
    return DiscountSplit(
        liquidator=discount - for_fund, insurance=insurance, protocol=for_fund - insurance
    )
