//! Dynamic LP fee: an LP action that moves a custody away from its target share of the pool
//! pays more, rising from `min` toward `max` as `d / (d + K)` with `d` the distance from the
//! target after the action (bps of pool value). Larger K makes the fee rise more slowly; K = 0
//! charges `max` for any move away. A move toward the target (or one that stays as close)
//! pays `min`. The fee stays with the pool, i.e. goes to the other LPs.

use super::checked::{mul_div_ceil_u64, mul_div_floor_u64};
use super::{MathError, MathResult, BPS_DENOMINATOR};

/// Share of the pool (bps, rounded down) that `value_usd` is of `aum_usd`; 0 for an empty pool.
pub fn ratio_bps(value_usd: u64, aum_usd: u64) -> MathResult<u64> {
    if aum_usd == 0 {
        return Ok(0);
    }
    mul_div_floor_u64(value_usd, BPS_DENOMINATOR, aum_usd)
}

/// Fee (bps) for an LP action that takes the custody's share from `before_bps` to `after_bps`.
pub fn liquidity_fee_bps(min_bps: u64, max_bps: u64, k_bps: u64, target_bps: u64, before_bps: u64, after_bps: u64) -> MathResult<u64> {
    if max_bps < min_bps {
        return Err(MathError::InvalidInput);
    }
    let distance_before = before_bps.abs_diff(target_bps);
    let distance_after = after_bps.abs_diff(target_bps);
    if distance_after <= distance_before {
        return Ok(min_bps);
    }
    let denominator = distance_after.checked_add(k_bps).ok_or(MathError::Overflow)?;
    let extra = mul_div_ceil_u64(max_bps - min_bps, distance_after, denominator)?;
    Ok(min_bps + extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples() {
        // min 10, max 100, K 1000, target 20%: a deposit taking the custody from 20% to 30%
        // (d = 1000) pays 10 + 90 × 1000 / 2000 = 55 bps.
        assert_eq!(liquidity_fee_bps(10, 100, 1_000, 2_000, 2_000, 3_000), Ok(55));
        // Larger K, slower change: K = 9000 → 10 + ceil(90 × 1000 / 10000) = 19 bps.
        assert_eq!(liquidity_fee_bps(10, 100, 9_000, 2_000, 2_000, 3_000), Ok(19));
        // Toward the target: the minimum.
        assert_eq!(liquidity_fee_bps(10, 100, 1_000, 2_000, 3_000, 2_500), Ok(10));
        // K = 0: any move away pays the maximum.
        assert_eq!(liquidity_fee_bps(10, 100, 0, 2_000, 2_000, 2_001), Ok(100));
        // Flat fee: min = max.
        assert_eq!(liquidity_fee_bps(30, 30, 5, 0, 0, 10_000), Ok(30));
        assert_eq!(liquidity_fee_bps(31, 30, 5, 0, 0, 1), Err(MathError::InvalidInput));
    }

    #[test]
    fn fee_never_exceeds_max_and_grows_with_distance() {
        let mut last = 0;
        for after in (2_000..=10_000).step_by(250) {
            let fee = liquidity_fee_bps(5, 80, 700, 2_000, 2_000, after).unwrap();
            assert!(fee <= 80 && fee >= last);
            last = fee;
        }
        assert_eq!(ratio_bps(1, 0), Ok(0));
        assert_eq!(ratio_bps(1, 3), Ok(3_333));
    }
}
