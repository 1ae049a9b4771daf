//! Price impact: the execution price moves against the trader as the trade grows relative to
//! the pool's liquidity, `impact = A·x + B·x²` with `x = size / liquidity` and `A`, `B` in bps
//! (per side). The impact stays in the pool (it is part of the trader's PnL), so it accrues to
//! the LPs. Rounded up and capped at [`MAX_PRICE_IMPACT`].

use super::checked::{mul_div_ceil, mul_div_floor, to_u64};
use super::{MathResult, BPS_DENOMINATOR, RATE_ONE};

/// Largest impact applied to one trade (10%, 9 decimals): beyond that the utilization and size
/// caps are what stop a trade.
pub const MAX_PRICE_IMPACT: u64 = RATE_ONE / 10;

/// Impact as a fraction of the price (9 decimals), rounded up:
/// `ceil((a_bps × x + b_bps × x² / 1e9) / 1e4)` with `x = ceil(size × 1e9 / liquidity)`.
/// Zero when both coefficients are zero; the cap when there is no liquidity.
pub fn price_impact(size_usd: u64, liquidity_usd: u64, a_bps: u64, b_bps: u64) -> MathResult<u64> {
    if (a_bps == 0 && b_bps == 0) || size_usd == 0 {
        return Ok(0);
    }
    if liquidity_usd == 0 {
        return Ok(MAX_PRICE_IMPACT);
    }
    let one = u128::from(RATE_ONE);
    let x = mul_div_ceil(u128::from(size_usd), one, u128::from(liquidity_usd))?;
    // Past x = 1000 (size a thousand times the pool) the cap binds for any non-zero A or B.
    let x = x.min(1_000 * one);
    let linear = x.saturating_mul(u128::from(a_bps));
    let quadratic = mul_div_ceil(x, x, one)?.saturating_mul(u128::from(b_bps));
    let impact = mul_div_ceil(linear.saturating_add(quadratic), 1, u128::from(BPS_DENOMINATOR))?;
    Ok(to_u64(impact.min(u128::from(MAX_PRICE_IMPACT)))?)
}

/// `price × (1 + impact)` rounded up (`up = true`, a buyer's price) or `price × (1 − impact)`
/// rounded down (a seller's price).
pub fn apply_impact(price_9dp: u64, impact: u64, up: bool) -> MathResult<u64> {
    let one = u128::from(RATE_ONE);
    let impact = u128::from(impact.min(MAX_PRICE_IMPACT));
    let p = u128::from(price_9dp);
    let v = if up { mul_div_ceil(p, one + impact, one)? } else { mul_div_floor(p, one - impact, one)? };
    to_u64(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example() {
        // A = 10 bps, B = 100 bps, size 10% of liquidity: 10 × 0.1 + 100 × 0.01 = 2 bps.
        let impact = price_impact(100_000_000, 1_000_000_000, 10, 100).unwrap();
        assert_eq!(impact, 200_000); // 0.02% in 1e9 units
        assert_eq!(apply_impact(1_000_000_000_000, impact, true), Ok(1_000_200_000_000));
        assert_eq!(apply_impact(1_000_000_000_000, impact, false), Ok(999_800_000_000));
    }

    #[test]
    fn zero_coefficients_and_caps() {
        assert_eq!(price_impact(1, 1, 0, 0), Ok(0));
        assert_eq!(price_impact(1, 0, 1, 0), Ok(MAX_PRICE_IMPACT));
        assert_eq!(price_impact(u64::MAX, 1, 10_000, 10_000), Ok(MAX_PRICE_IMPACT));
        // A tiny trade still pays at least one unit of impact (rounded up).
        assert_eq!(price_impact(1, u64::MAX, 1, 0), Ok(1));
    }

    #[test]
    fn impact_grows_with_size() {
        let mut last = 0;
        for size in [1u64, 10, 1_000, 1_000_000, 100_000_000, 1_000_000_000] {
            let i = price_impact(size, 1_000_000_000, 10, 100).unwrap();
            assert!(i >= last);
            last = i;
        }
    }
}
