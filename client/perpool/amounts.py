"""Human amounts ("1.5" SOL, "100" USDC) to on-chain integers and back.

Parsing goes through :class:`decimal.Decimal` and never rounds: an amount with more decimal
places than the unit has is rejected, so what the user typed is exactly what is sent.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

USD_DECIMALS = 6
"""USD amounts of the program (sizes, PnL, fees) are integers with 6 decimals."""
PRICE_DECIMALS = 9
"""Entry/exit/liquidation prices stored by the program have 9 decimals."""
BPS = 10_000
LP_DECIMALS = 6


class AmountError(ValueError):
    """An amount the user typed cannot be used (not a number, negative, too precise)."""


def parse_decimal(text: str, what: str = "amount") -> Decimal:
    try:
        value = Decimal(text.strip().replace("_", ""))
    except InvalidOperation as exc:
        raise AmountError(f"{what} {text!r} is not a number") from exc
    if not value.is_finite():
        raise AmountError(f"{what} {text!r} is not a finite number")
    return value


def to_base_units(
    text: str, decimals: int, what: str = "amount", *, allow_zero: bool = False
) -> int:
    """``"1.5"`` with 9 decimals → ``1_500_000_000``; rejects negative, zero and over-precise."""
    value = parse_decimal(text, what)
    if value < 0:
        raise AmountError(f"{what} must be positive, got {text}")
    if value == 0 and not allow_zero:
        raise AmountError(f"{what} must be greater than zero")
    result = _exact_scaled(value, decimals)
    if result is None:
        raise AmountError(f"{what} {text} has more than {decimals} decimal places")
    if result >= 2**64:
        raise AmountError(f"{what} {text} is too large")
    return result


def _exact_scaled(value: Decimal, decimals: int) -> int | None:
    """``value * 10**decimals`` if that is an integer, else None (exact, no context rounding)."""
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values have an int exponent
    mantissa: int = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    if shift >= 0:
        return mantissa * int(10**shift)
    quotient, remainder = divmod(mantissa, int(10**-shift))
    return quotient if remainder == 0 else None


def format_units(amount: int, decimals: int) -> str:
    """``1_500_000_000`` with 9 decimals → ``"1.5"`` (exact, no exponent, no trailing zeros)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    if decimals == 0 or frac == 0:
        return f"{sign}{whole}"
    digits = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{digits}"


def usd(amount: int) -> str:
    """USD with 6 decimals as a decimal string."""
    return format_units(amount, USD_DECIMALS)


def price_9dp(amount: int) -> str:
    return format_units(amount, PRICE_DECIMALS)


def bps_to_ratio(bps: int) -> str:
    """Basis points as a plain ratio string (``250`` → ``"0.025"``)."""
    return format_units(bps, 4)


def oracle_price(price: int, expo: int) -> str:
    """``price * 10**expo`` as an exact decimal string."""
    if expo >= 0:
        return str(price * 10**expo)
    return format_units(price, -expo)


def parse_oracle_price(text: str, what: str = "price", *, min_decimals: int = 8) -> tuple[int, int]:
    """A human price → ``(mantissa, expo)``; the exponent is ``-min_decimals`` unless the input
    needs more decimals (at most 18, the program's limit)."""
    value = parse_decimal(text, what)
    if value <= 0:
        raise AmountError(f"{what} must be greater than zero")
    for decimals in range(min_decimals, 19):
        mantissa = _exact_scaled(value, decimals)
        if mantissa is not None:
            break
    else:
        raise AmountError(f"{what} {text} has more than 18 decimal places")
    if mantissa >= 2**63:
        raise AmountError(f"{what} {text} is too large")
    return mantissa, -decimals


def parse_bps_fraction(text: str, what: str = "fraction") -> int:
    """A fraction in (0, 1] → basis points (``"0.5"`` → ``5000``), exact."""
    value = parse_decimal(text, what)
    if not 0 < value <= 1:
        raise AmountError(f"{what} must be greater than 0 and at most 1, got {text}")
    return to_base_units(text, 4, what)
