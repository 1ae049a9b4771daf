//! Oracle prices and token ⇄ USD conversion.
//!
//! An oracle reports `price × 10^exponent` USD per *whole* token (Pyth style; the exponent may be
//! negative or positive). Conversions go through one exact power-of-ten shift and a single
//! rounded division, so each function rounds exactly once, in the direction its name says.

use core::cmp::Ordering;

use super::checked::{mul_div, scale_pow10, to_u64, Rounding};
use super::{MathError, MathResult, BPS_DENOMINATOR, PRICE_DECIMALS, USD_DECIMALS};

/// `price × 10^exponent` USD per whole token. E.g. SOL at $150.25 = `{ price: 15025,
/// exponent: -2 }`; `{ price: 15, exponent: 1 }` is $150.
///
/// Equality and ordering compare the *value*, not the fields: `{1, 0} == {10, -1}`.
#[derive(Debug, Clone, Copy)]
pub struct OraclePrice {
    pub price: u64,
    pub exponent: i32,
}

impl OraclePrice {
    pub const fn new(price: u64, exponent: i32) -> Self {
        Self { price, exponent }
    }

    /// A stored [`PRICE_DECIMALS`] price viewed as an oracle price (exact, no rounding).
    pub const fn from_price_9dp(price_9dp: u64) -> Self {
        // −PRICE_DECIMALS as a literal: `i32::from` is not const. A test pins the two together.
        Self {
            price: price_9dp,
            exponent: -9,
        }
    }

    /// Same value expressed with `target_exponent`, rounding the mantissa down when precision
    /// is lost. `Overflow` if the mantissa no longer fits u64 (target much smaller).
    pub fn scale_to_exponent_floor(&self, target_exponent: i32) -> MathResult<OraclePrice> {
        self.scale_to_exponent(target_exponent, Rounding::Floor)
    }

    /// As [`Self::scale_to_exponent_floor`] but rounding the mantissa up.
    pub fn scale_to_exponent_ceil(&self, target_exponent: i32) -> MathResult<OraclePrice> {
        self.scale_to_exponent(target_exponent, Rounding::Ceil)
    }

    fn scale_to_exponent(
        &self,
        target_exponent: i32,
        rounding: Rounding,
    ) -> MathResult<OraclePrice> {
        // i64 so that i32 extremes cannot overflow the difference.
        let shift = i64::from(self.exponent) - i64::from(target_exponent);
        let price = to_u64(scale_pow10(u128::from(self.price), shift, rounding)?)?;
        Ok(OraclePrice {
            price,
            exponent: target_exponent,
        })
    }

    /// Price as a [`PRICE_DECIMALS`] integer, rounded down. Use for a long's exit price and a
    /// short's entry price (see `pnl::entry_price_9dp` / `exit_price_9dp`).
    pub fn to_price_9dp_floor(&self) -> MathResult<u64> {
        Ok(self.scale_to_exponent_floor(price_9dp_exponent())?.price)
    }

    /// Price as a [`PRICE_DECIMALS`] integer, rounded up. Use for a long's entry price and a
    /// short's exit price.
    pub fn to_price_9dp_ceil(&self) -> MathResult<u64> {
        Ok(self.scale_to_exponent_ceil(price_9dp_exponent())?.price)
    }

    pub const fn is_zero(&self) -> bool {
        self.price == 0
    }

    /// Exact value comparison, even across very different exponents (never fails).
    pub fn cmp_value(&self, other: &OraclePrice) -> Ordering {
        if self.price == 0 || other.price == 0 {
            return self.price.cmp(&other.price);
        }
        let (a, b) = (self, other);
        let diff = i64::from(a.exponent) - i64::from(b.exponent);
        // Both mantissas are >= 1 here. u64::MAX < 10^20, so a shift of 20+ decimal places
        // decides the comparison on its own; below that, mantissa × 10^19 fits u128 exactly.
        if diff >= 20 {
            return Ordering::Greater;
        }
        if diff <= -20 {
            return Ordering::Less;
        }
        let (lhs, rhs) = if diff >= 0 {
            (scale_exact(a.price, diff), u128::from(b.price))
        } else {
            (u128::from(a.price), scale_exact(b.price, -diff))
        };
        lhs.cmp(&rhs)
    }

    /// The lower of two prices by value (used to value assets credited to a user).
    pub fn min_value(self, other: OraclePrice) -> OraclePrice {
        if self.cmp_value(&other) == Ordering::Greater {
            other
        } else {
            self
        }
    }

    /// The higher of two prices by value (used to value liabilities / tokens paid out).
    pub fn max_value(self, other: OraclePrice) -> OraclePrice {
        if self.cmp_value(&other) == Ordering::Less {
            other
        } else {
            self
        }
    }
}

/// `mantissa × 10^shift` for `0 <= shift <= 19`, which always fits u128.
fn scale_exact(mantissa: u64, shift: i64) -> u128 {
    let exp = u32::try_from(shift).unwrap_or(0);
    u128::from(mantissa) * 10u128.pow(exp)
}

fn price_9dp_exponent() -> i32 {
    -i32::from(PRICE_DECIMALS)
}

impl PartialEq for OraclePrice {
    fn eq(&self, other: &Self) -> bool {
        self.cmp_value(other) == Ordering::Equal
    }
}
impl Eq for OraclePrice {}
impl PartialOrd for OraclePrice {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OraclePrice {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_value(other)
    }
}

/// Decimal shift from `amount × price` to USD units: `exponent + USD_DECIMALS − decimals`.
fn usd_shift(decimals: u8, price: &OraclePrice) -> i64 {
    i64::from(price.exponent) + i64::from(USD_DECIMALS) - i64::from(decimals)
}

/// USD value (6 dp) of `amount` base units, rounded down. Use when crediting a user (collateral
/// value, deposit value, AUM valued low): the user never gets credit for a fraction of a cent-unit.
pub fn token_to_usd_floor(amount: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    token_to_usd(amount, decimals, price, Rounding::Floor)
}

/// USD value (6 dp) of `amount` base units, rounded up. Use when valuing what a user owes or
/// when valuing the pool high (AUM for LP minting).
pub fn token_to_usd_ceil(amount: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    token_to_usd(amount, decimals, price, Rounding::Ceil)
}

fn token_to_usd(
    amount: u64,
    decimals: u8,
    price: &OraclePrice,
    rounding: Rounding,
) -> MathResult<u64> {
    // usd_units = amount × price × 10^(exponent + 6 − decimals); the product is exact in u128.
    let product = u128::from(amount) * u128::from(price.price);
    to_u64(scale_pow10(product, usd_shift(decimals, price), rounding)?)
}

/// Base units worth `usd` (6 dp), rounded down. Use for every token amount *paid out* (payouts,
/// LP redemptions, swap output), so the pool never hands out a fractional unit.
/// `DivisionByZero` on a zero price.
pub fn usd_to_token_floor(usd: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    usd_to_token(usd, decimals, price, Rounding::Floor)
}

/// Base units worth `usd` (6 dp), rounded up. Use for token amounts a user must *bring* to cover
/// a USD amount (e.g. a fee charged in tokens derived from a USD fee).
pub fn usd_to_token_ceil(usd: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    usd_to_token(usd, decimals, price, Rounding::Ceil)
}

fn usd_to_token(
    usd: u64,
    decimals: u8,
    price: &OraclePrice,
    rounding: Rounding,
) -> MathResult<u64> {
    if price.price == 0 {
        return Err(MathError::DivisionByZero);
    }
    // tokens = usd × 10^(−shift) / price, with shift = exponent + 6 − decimals.
    let shift = usd_shift(decimals, price);
    let usd = u128::from(usd);
    let mantissa = u128::from(price.price);
    if shift <= 0 {
        // Scale the numerator up. If that overflows u128 the quotient exceeds u64 anyway
        // (numerator > 2^128, divisor < 2^64), so `Overflow` is the right answer.
        let numerator = scale_pow10(usd, -shift, rounding)?;
        to_u64(mul_div(numerator, 1, mantissa, rounding)?)
    } else {
        // Scale the divisor up. If it overflows u128 it exceeds the numerator (< 2^64): the
        // quotient is in (0, 1) for non-zero usd, i.e. 0 rounded down, 1 rounded up.
        match scale_pow10(mantissa, shift, rounding) {
            Ok(divisor) => to_u64(mul_div(usd, 1, divisor, rounding)?),
            Err(_) => Ok(match rounding {
                Rounding::Ceil if usd != 0 => 1,
                _ => 0,
            }),
        }
    }
}

/// [`usd_to_token_floor`] for an amount capped right after by what an account holds (a payout
/// capped by the slice's collateral and locked tokens, a fee collected out of what the pool
/// keeps, the room left under a fund's cap): a result beyond `u64` is more than any account can
/// hold, so it saturates to `u64::MAX` instead of failing. A collateral token whose price has
/// fallen to almost nothing then cannot make a position impossible to close or liquidate.
/// `DivisionByZero` on a zero price, as the plain conversion.
pub fn usd_to_token_floor_saturating(usd: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    saturate(usd_to_token_floor(usd, decimals, price))
}

/// [`usd_to_token_ceil`], saturating like [`usd_to_token_floor_saturating`] (for a bad debt
/// covered out of a fund's balance).
pub fn usd_to_token_ceil_saturating(usd: u64, decimals: u8, price: &OraclePrice) -> MathResult<u64> {
    saturate(usd_to_token_ceil(usd, decimals, price))
}

fn saturate(result: MathResult<u64>) -> MathResult<u64> {
    match result {
        Err(MathError::Overflow) => Ok(u64::MAX),
        other => other,
    }
}

/// Oracle confidence check: `conf / price <= max_error_bps / 10_000`, evaluated exactly as
/// `conf × 10_000 <= max_error_bps × price` (both products fit u128). At the limit the price is
/// accepted; one unit of `conf` over is rejected. A zero price is never valid. `conf` is in the
/// same exponent as `price` (as Pyth reports it).
pub fn price_within_confidence(price: u64, conf: u64, max_error_bps: u64) -> bool {
    if price == 0 {
        return false;
    }
    u128::from(conf) * u128::from(BPS_DENOMINATOR) <= u128::from(max_error_bps) * u128::from(price)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::{pseudo_random_u64s, SAMPLE_U64S};

    const SOL: OraclePrice = OraclePrice::new(15_025, -2); // $150.25
    const SOL_DECIMALS: u8 = 9;
    const USDC_DECIMALS: u8 = 6;

    #[test]
    fn scale_to_exponent_both_directions() {
        let p = SOL.scale_to_exponent_floor(-9).unwrap();
        assert_eq!((p.price, p.exponent), (150_250_000_000, -9));
        let p = SOL.scale_to_exponent_floor(0).unwrap();
        assert_eq!((p.price, p.exponent), (150, 0));
        let p = SOL.scale_to_exponent_ceil(0).unwrap();
        assert_eq!((p.price, p.exponent), (151, 0));
        // Positive exponents.
        let p = OraclePrice::new(15, 1).scale_to_exponent_floor(-2).unwrap();
        assert_eq!(p.price, 15_000);
        let p = OraclePrice::new(15_025, -2)
            .scale_to_exponent_ceil(1)
            .unwrap();
        assert_eq!(p.price, 16);
        // Far shifts: overflow up, 0/1 down.
        assert_eq!(
            OraclePrice::new(1, 0).scale_to_exponent_floor(-20),
            Err(MathError::Overflow)
        );
        assert_eq!(
            OraclePrice::new(5, i32::MIN)
                .scale_to_exponent_floor(i32::MAX)
                .unwrap()
                .price,
            0
        );
        assert_eq!(
            OraclePrice::new(5, i32::MIN)
                .scale_to_exponent_ceil(i32::MAX)
                .unwrap()
                .price,
            1
        );
        assert_eq!(
            OraclePrice::new(0, i32::MAX)
                .scale_to_exponent_ceil(i32::MIN)
                .unwrap()
                .price,
            0
        );
    }

    #[test]
    fn price_9dp_round_trip() {
        assert_eq!(SOL.to_price_9dp_floor(), Ok(150_250_000_000));
        assert_eq!(SOL.to_price_9dp_ceil(), Ok(150_250_000_000));
        let fine = OraclePrice::new(1_234_567_891_234, -12); // $1.234567891234
        assert_eq!(fine.to_price_9dp_floor(), Ok(1_234_567_891));
        assert_eq!(fine.to_price_9dp_ceil(), Ok(1_234_567_892));
        assert_eq!(
            OraclePrice::new(3, 2).to_price_9dp_floor(),
            Ok(300_000_000_000)
        );
        assert_eq!(
            OraclePrice::from_price_9dp(1).exponent,
            price_9dp_exponent()
        );
        let back = OraclePrice::from_price_9dp(150_250_000_000);
        assert_eq!(back, SOL);
        assert_eq!(
            OraclePrice::new(u64::MAX, 0).to_price_9dp_floor(),
            Err(MathError::Overflow)
        );
    }

    #[test]
    fn comparisons_by_value() {
        assert_eq!(OraclePrice::new(1, 0), OraclePrice::new(10, -1));
        assert!(OraclePrice::new(15_026, -2) > SOL);
        assert!(OraclePrice::new(150_249_999_999, -9) < SOL);
        assert!(OraclePrice::new(1, 30) > OraclePrice::new(u64::MAX, 0));
        assert!(OraclePrice::new(u64::MAX, -30) < OraclePrice::new(1, -10));
        assert!(OraclePrice::new(u64::MAX, -19) > OraclePrice::new(1, 0));
        assert!(OraclePrice::new(0, 30) < OraclePrice::new(1, -30));
        assert_eq!(OraclePrice::new(0, 30), OraclePrice::new(0, -30));
        assert_eq!(SOL.max_value(OraclePrice::new(151, 0)).price, 151);
        assert_eq!(SOL.min_value(OraclePrice::new(151, 0)).price, 15_025);
    }

    #[test]
    fn token_to_usd_examples() {
        // 2 SOL at $150.25 = $300.50.
        assert_eq!(
            token_to_usd_floor(2_000_000_000, SOL_DECIMALS, &SOL),
            Ok(300_500_000)
        );
        // 1 lamport at $150.25 = 0.00015025 USD units → floor 0, ceil 1.
        assert_eq!(token_to_usd_floor(1, SOL_DECIMALS, &SOL), Ok(0));
        assert_eq!(token_to_usd_ceil(1, SOL_DECIMALS, &SOL), Ok(1));
        // USDC at $1 (Pyth style 1e8 with expo −8).
        let usdc = OraclePrice::new(100_000_000, -8);
        assert_eq!(
            token_to_usd_floor(123_456_789, USDC_DECIMALS, &usdc),
            Ok(123_456_789)
        );
        // Positive exponent: token worth $150 as {15, 1}, 0-decimals mint.
        assert_eq!(
            token_to_usd_floor(3, 0, &OraclePrice::new(15, 1)),
            Ok(450_000_000)
        );
        // Overflow is an error, not a wrap.
        assert_eq!(
            token_to_usd_floor(u64::MAX, 0, &OraclePrice::new(u64::MAX, 0)),
            Err(MathError::Overflow)
        );
    }

    #[test]
    fn usd_to_token_examples() {
        // $300.50 at $150.25 = 2 SOL exactly.
        assert_eq!(
            usd_to_token_floor(300_500_000, SOL_DECIMALS, &SOL),
            Ok(2_000_000_000)
        );
        assert_eq!(
            usd_to_token_ceil(300_500_000, SOL_DECIMALS, &SOL),
            Ok(2_000_000_000)
        );
        // $1 at $150.25 = 6_655_574.04... lamports.
        assert_eq!(
            usd_to_token_floor(1_000_000, SOL_DECIMALS, &SOL),
            Ok(6_655_574)
        );
        assert_eq!(
            usd_to_token_ceil(1_000_000, SOL_DECIMALS, &SOL),
            Ok(6_655_575)
        );
        // Positive exponent, 0-decimals mint: $450 at {15, 1} = 3 tokens.
        assert_eq!(
            usd_to_token_floor(450_000_000, 0, &OraclePrice::new(15, 1)),
            Ok(3)
        );
        // Enormous price: fraction of a unit → 0 floor, 1 ceil, 0 for zero usd.
        let huge = OraclePrice::new(u64::MAX, 40);
        assert_eq!(usd_to_token_floor(u64::MAX, 0, &huge), Ok(0));
        assert_eq!(usd_to_token_ceil(u64::MAX, 0, &huge), Ok(1));
        assert_eq!(usd_to_token_ceil(0, 0, &huge), Ok(0));
        // Tiny price: result beyond u64 is an error.
        assert_eq!(
            usd_to_token_floor(u64::MAX, 18, &OraclePrice::new(1, -30)),
            Err(MathError::Overflow)
        );
        assert_eq!(
            usd_to_token_floor(1, 9, &OraclePrice::new(0, -2)),
            Err(MathError::DivisionByZero)
        );
    }

    #[test]
    fn saturating_conversions_for_capped_amounts() {
        // $10,000 of bad debt in a 9-decimal token worth $0.00000001: 10^21 base units.
        let crashed = OraclePrice::new(1, -8);
        assert_eq!(usd_to_token_ceil(10_000_000_000, SOL_DECIMALS, &crashed), Err(MathError::Overflow));
        assert_eq!(usd_to_token_ceil_saturating(10_000_000_000, SOL_DECIMALS, &crashed), Ok(u64::MAX));
        assert_eq!(usd_to_token_floor_saturating(10_000_000_000, SOL_DECIMALS, &crashed), Ok(u64::MAX));
        // In range: the plain conversions.
        assert_eq!(usd_to_token_floor_saturating(1_000_000, SOL_DECIMALS, &SOL), Ok(6_655_574));
        assert_eq!(usd_to_token_ceil_saturating(1_000_000, SOL_DECIMALS, &SOL), Ok(6_655_575));
        assert_eq!(usd_to_token_floor_saturating(1, 9, &OraclePrice::new(0, -2)), Err(MathError::DivisionByZero));
    }

    #[test]
    fn confidence_limit_is_inclusive() {
        // max error 100 bps = 1%: conf 1.5025 at 150.25 is exactly at the limit.
        assert!(price_within_confidence(15_025, 150, 100) == (150 * 10_000 <= 100 * 15_025));
        assert!(price_within_confidence(1_000_000, 10_000, 100));
        assert!(!price_within_confidence(1_000_000, 10_001, 100));
        assert!(price_within_confidence(1_000_000, 0, 0));
        assert!(!price_within_confidence(1_000_000, 1, 0));
        assert!(!price_within_confidence(0, 0, 10_000));
        assert!(price_within_confidence(u64::MAX, u64::MAX, 10_000));
        assert!(!price_within_confidence(u64::MAX - 1, u64::MAX, 10_000));
    }

    /// Rounding direction over many amounts, decimals and prices:
    /// floor ≤ ceil ≤ floor + 1, and a round trip through USD never yields more tokens.
    #[test]
    fn property_conversion_rounding_directions() {
        let prices = [
            SOL,
            OraclePrice::new(100_000_000, -8),
            OraclePrice::new(6_543_210_987, -5),
            OraclePrice::new(15, 1),
            OraclePrice::new(1, -12),
            OraclePrice::new(99_999, -3),
        ];
        let amounts: Vec<u64> = SAMPLE_U64S
            .iter()
            .copied()
            .chain(pseudo_random_u64s(80, 11))
            .collect();
        for price in &prices {
            for decimals in [0u8, 6, 8, 9, 18] {
                for &x in &amounts {
                    let (Ok(lo), Ok(hi)) = (
                        token_to_usd_floor(x, decimals, price),
                        token_to_usd_ceil(x, decimals, price),
                    ) else {
                        continue;
                    };
                    assert!(
                        lo <= hi && hi - lo <= 1,
                        "token_to_usd {x} {decimals} {price:?}"
                    );
                    // usd_to_token_floor(token_to_usd_floor(x)) <= x.
                    if let Ok(back) = usd_to_token_floor(lo, decimals, price) {
                        assert!(back <= x, "round trip gained: {x} -> {lo} -> {back}");
                    }
                    // The ceil round trip never loses what the user must bring.
                    if let Ok(back_up) = usd_to_token_ceil(hi, decimals, price) {
                        assert!(back_up >= x, "ceil round trip {x} -> {hi} -> {back_up}");
                    }
                    // And the other direction: usd → tokens floor → usd floor never exceeds usd.
                    if let Ok(t) = usd_to_token_floor(x, decimals, price) {
                        if let Ok(u) = token_to_usd_floor(t, decimals, price) {
                            assert!(u <= x);
                        }
                        let t_up = usd_to_token_ceil(x, decimals, price).unwrap();
                        assert!(t <= t_up && t_up - t <= 1);
                    }
                }
            }
        }
    }
}
