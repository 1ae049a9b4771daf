//! Checked integer primitives every other math file builds on.
//!
//! Why this file exists: a perps pool moves value on every rounding step, so each division must
//! say which way it rounds, and no intermediate may wrap or be silently truncated. Products of
//! two `u64` always fit in `u128`, so `mul_div_*` on `u64` inputs can only fail on division by
//! zero or when the *result* does not fit the caller's width.

use super::{MathError, MathResult};

/// Direction of an inexact division. Internal plumbing: the public API exposes explicit
/// `_floor` / `_ceil` functions so that each call site names its rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rounding {
    Floor,
    Ceil,
}

/// Largest `k` with `10^k <= u128::MAX` (10^38 ≈ 1e38 < 3.4e38).
pub const MAX_POW10_U128: u32 = 38;

/// `floor(a * b / c)`. Errors: `DivisionByZero` if `c == 0`, `Overflow` if `a * b` exceeds u128.
pub fn mul_div_floor(a: u128, b: u128, c: u128) -> MathResult<u128> {
    mul_div(a, b, c, Rounding::Floor)
}

/// `ceil(a * b / c)`. Errors as [`mul_div_floor`].
pub fn mul_div_ceil(a: u128, b: u128, c: u128) -> MathResult<u128> {
    mul_div(a, b, c, Rounding::Ceil)
}

/// `floor(a * b / c)` for `u64` operands; the product is exact in u128, only the result can
/// fail to fit (`Overflow`).
pub fn mul_div_floor_u64(a: u64, b: u64, c: u64) -> MathResult<u64> {
    to_u64(mul_div_floor(u128::from(a), u128::from(b), u128::from(c))?)
}

/// `ceil(a * b / c)` for `u64` operands. Errors as [`mul_div_floor_u64`].
pub fn mul_div_ceil_u64(a: u64, b: u64, c: u64) -> MathResult<u64> {
    to_u64(mul_div_ceil(u128::from(a), u128::from(b), u128::from(c))?)
}

pub(crate) fn mul_div(a: u128, b: u128, c: u128, rounding: Rounding) -> MathResult<u128> {
    if c == 0 {
        return Err(MathError::DivisionByZero);
    }
    let product = a.checked_mul(b).ok_or(MathError::Overflow)?;
    Ok(div_round(product, c, rounding))
}

/// `n / d` rounded as asked; `d` must be non-zero (callers check).
fn div_round(n: u128, d: u128, rounding: Rounding) -> u128 {
    let q = n / d;
    match rounding {
        Rounding::Floor => q,
        // `q * d <= n` cannot overflow; it is `< n` exactly when there is a remainder, and then
        // q < n/d + 1 <= u128::MAX, so `q + 1` cannot wrap either. (Not `is_multiple_of`,
        // which older SBF toolchains lack.)
        Rounding::Ceil if q * d < n => q + 1,
        Rounding::Ceil => q,
    }
}

/// Sum of u64 amounts, `Overflow` if it does not fit.
pub fn checked_sum(amounts: &[u64]) -> MathResult<u64> {
    amounts.iter().try_fold(0u64, |acc, a| acc.checked_add(*a)).ok_or(MathError::Overflow)
}

/// Narrow to u64 without truncation (`Overflow` if it does not fit). Use this instead of `as`.
pub fn to_u64(value: u128) -> MathResult<u64> {
    u64::try_from(value).map_err(|_| MathError::Overflow)
}

/// `10^exp` as u128; `Overflow` beyond 10^38.
pub fn pow10(exp: u32) -> MathResult<u128> {
    10u128.checked_pow(exp).ok_or(MathError::Overflow)
}

/// `value * 10^exp`, exact. Zero stays zero for any `exp` (so huge exponents on a zero price are
/// not an error).
pub fn mul_pow10(value: u128, exp: u32) -> MathResult<u128> {
    if value == 0 {
        return Ok(0);
    }
    value.checked_mul(pow10(exp)?).ok_or(MathError::Overflow)
}

/// `floor(value / 10^exp)`. Infallible: for `exp > 38` the divisor exceeds every u128, so the
/// quotient is 0.
pub fn div_pow10_floor(value: u128, exp: u32) -> u128 {
    div_pow10(value, exp, Rounding::Floor)
}

/// `ceil(value / 10^exp)`. Infallible: for `exp > 38` the result is 1 for any non-zero value.
pub fn div_pow10_ceil(value: u128, exp: u32) -> u128 {
    div_pow10(value, exp, Rounding::Ceil)
}

pub(crate) fn div_pow10(value: u128, exp: u32, rounding: Rounding) -> u128 {
    if exp > MAX_POW10_U128 {
        return match rounding {
            Rounding::Ceil if value != 0 => 1,
            _ => 0,
        };
    }
    // exp <= 38, so 10^exp fits and is non-zero.
    let divisor = 10u128.pow(exp);
    div_round(value, divisor, rounding)
}

/// Scale `value` by `10^shift` for a signed shift: multiply (exact, may overflow) when
/// `shift >= 0`, divide with the given rounding when `shift < 0`.
pub(crate) fn scale_pow10(value: u128, shift: i64, rounding: Rounding) -> MathResult<u128> {
    if shift >= 0 {
        // A shift that does not fit u32 is far beyond 10^38: overflow unless value is zero.
        let exp = u32::try_from(shift).unwrap_or(u32::MAX);
        mul_pow10(value, exp)
    } else {
        let exp = u32::try_from(shift.unsigned_abs()).unwrap_or(u32::MAX);
        Ok(div_pow10(value, exp, rounding))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::{pseudo_random_u64s, SAMPLE_U64S};

    #[test]
    fn mul_div_exact_and_rounding() {
        assert_eq!(mul_div_floor(10, 10, 4), Ok(25));
        assert_eq!(mul_div_ceil(10, 10, 4), Ok(25));
        assert_eq!(mul_div_floor(10, 1, 3), Ok(3));
        assert_eq!(mul_div_ceil(10, 1, 3), Ok(4));
        assert_eq!(mul_div_floor(0, 5, 3), Ok(0));
        assert_eq!(mul_div_ceil(0, 5, 3), Ok(0));
    }

    #[test]
    fn mul_div_errors() {
        assert_eq!(mul_div_floor(1, 1, 0), Err(MathError::DivisionByZero));
        assert_eq!(mul_div_ceil(1, 1, 0), Err(MathError::DivisionByZero));
        assert_eq!(mul_div_floor(u128::MAX, 2, 2), Err(MathError::Overflow));
        assert_eq!(mul_div_ceil(u128::MAX, 2, 2), Err(MathError::Overflow));
        // Largest product still works and rounds up without wrapping.
        assert_eq!(mul_div_ceil(u128::MAX, 1, 2), Ok(u128::MAX / 2 + 1));
        assert_eq!(mul_div_floor_u64(u64::MAX, 2, 1), Err(MathError::Overflow));
        assert_eq!(
            mul_div_floor_u64(u64::MAX, u64::MAX, u64::MAX),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn to_u64_never_truncates() {
        assert_eq!(to_u64(u128::from(u64::MAX)), Ok(u64::MAX));
        assert_eq!(to_u64(u128::from(u64::MAX) + 1), Err(MathError::Overflow));
    }

    #[test]
    fn pow10_bounds() {
        assert_eq!(pow10(0), Ok(1));
        assert_eq!(pow10(38), Ok(10u128.pow(38)));
        assert_eq!(pow10(39), Err(MathError::Overflow));
        assert_eq!(mul_pow10(0, 1000), Ok(0));
        assert_eq!(mul_pow10(1, 39), Err(MathError::Overflow));
        assert_eq!(div_pow10_floor(u128::MAX, 39), 0);
        assert_eq!(div_pow10_ceil(u128::MAX, 39), 1);
        assert_eq!(div_pow10_ceil(0, 39), 0);
        assert_eq!(
            div_pow10_ceil(u128::MAX, 38),
            u128::MAX / 10u128.pow(38) + 1
        );
        assert_eq!(
            scale_pow10(5, i64::MAX, Rounding::Floor),
            Err(MathError::Overflow)
        );
        assert_eq!(scale_pow10(5, i64::MIN, Rounding::Ceil), Ok(1));
        assert_eq!(scale_pow10(1234, -2, Rounding::Floor), Ok(12));
        assert_eq!(scale_pow10(1234, -2, Rounding::Ceil), Ok(13));
        assert_eq!(scale_pow10(12, 2, Rounding::Ceil), Ok(1200));
    }

    /// floor <= exact rational <= ceil, and they differ by at most one, over many triples.
    #[test]
    fn property_floor_le_ceil_within_one() {
        let values: Vec<u64> = SAMPLE_U64S
            .iter()
            .copied()
            .chain(pseudo_random_u64s(64, 7))
            .collect();
        for &a in &values {
            for &b in &values {
                for &c in values.iter().filter(|&&c| c != 0).step_by(3) {
                    let (a, b, c) = (u128::from(a), u128::from(b), u128::from(c));
                    let lo = mul_div_floor(a, b, c).unwrap();
                    let hi = mul_div_ceil(a, b, c).unwrap();
                    assert!(lo <= hi && hi - lo <= 1);
                    // lo*c <= a*b <= hi*c, checked without overflow via u128 quotient/remainder.
                    let p = a * b;
                    assert_eq!(lo, p / c);
                    assert_eq!(hi == lo, p % c == 0);
                }
            }
        }
    }
}
