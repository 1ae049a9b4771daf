//! Funding from open-interest skew.
//!
//! Hourly rate (9 decimals, signed: positive = longs pay):
//! `rate = (long_oi − short_oi) / (C × liquidity)`, rounded up in magnitude and capped at the
//! custody's maximum; `C = 0` switches funding off. C is in hours: a skew as large as the
//! pool's liquidity pays `1/C` of the size per hour.
//!
//! Like the borrow fee, funding accrues through cumulative indices (units of [`INDEX_ONE`] per
//! USD of size). Over `Δt` seconds the heavy side's index grows by `|rate| × Δt` exactly; the
//! light side's index falls by `|rate| × Δt × heavy_oi / light_oi`, rounded down, so the light
//! side receives at most what the heavy side pays and the rounding stays with the pool. With
//! nobody on the light side the heavy side pays the pool.

use super::checked::{mul_div_ceil, mul_div_floor};
use super::{MathError, MathResult, INDEX_ONE, RATE_ONE};

/// Signed hourly funding rate (9 decimals): positive when longs are the heavy side.
pub fn funding_rate(long_oi_usd: u64, short_oi_usd: u64, liquidity_usd: u64, funding_c: u64, max_rate: u64) -> MathResult<i64> {
    if funding_c == 0 || long_oi_usd == short_oi_usd {
        return Ok(0);
    }
    let skew = long_oi_usd.abs_diff(short_oi_usd);
    let magnitude = if liquidity_usd == 0 {
        max_rate
    } else {
        let denominator = u128::from(funding_c).checked_mul(u128::from(liquidity_usd)).ok_or(MathError::Overflow)?;
        let rate = mul_div_ceil(u128::from(skew), u128::from(RATE_ONE), denominator)?;
        u64::try_from(rate.min(u128::from(max_rate))).map_err(|_| MathError::Overflow)?
    };
    let magnitude = i64::try_from(magnitude).map_err(|_| MathError::Overflow)?;
    Ok(if long_oi_usd > short_oi_usd { magnitude } else { -magnitude })
}

/// The (long, short) indices after `elapsed_secs` at `rate` with the given open interest.
pub fn accrue_funding(
    long_index: i128,
    short_index: i128,
    rate: i64,
    elapsed_secs: u64,
    long_oi_usd: u64,
    short_oi_usd: u64,
) -> MathResult<(i128, i128)> {
    if rate == 0 || elapsed_secs == 0 {
        return Ok((long_index, short_index));
    }
    let paid = u128::from(rate.unsigned_abs()).checked_mul(u128::from(elapsed_secs)).ok_or(MathError::Overflow)?;
    let (heavy_oi, light_oi) = if rate > 0 { (long_oi_usd, short_oi_usd) } else { (short_oi_usd, long_oi_usd) };
    let received = if light_oi == 0 { 0 } else { mul_div_floor(paid, u128::from(heavy_oi), u128::from(light_oi))? };
    let paid = i128::try_from(paid).map_err(|_| MathError::Overflow)?;
    let received = i128::try_from(received).map_err(|_| MathError::Overflow)?;
    let add = |index: i128, delta: i128| index.checked_add(delta).ok_or(MathError::Overflow);
    if rate > 0 {
        Ok((add(long_index, paid)?, add(short_index, -received)?))
    } else {
        Ok((add(long_index, -received)?, add(short_index, paid)?))
    }
}

/// Funding a position of `size_usd` owes since its snapshot: positive = it pays (rounded up),
/// negative = it receives (magnitude rounded down).
pub fn funding_usd(size_usd: u64, index_now: i128, index_snapshot: i128) -> MathResult<i64> {
    let delta = index_now.checked_sub(index_snapshot).ok_or(MathError::Overflow)?;
    let size = u128::from(size_usd);
    let magnitude = if delta >= 0 {
        mul_div_ceil(delta.unsigned_abs(), size, INDEX_ONE)?
    } else {
        mul_div_floor(delta.unsigned_abs(), size, INDEX_ONE)?
    };
    let magnitude = i64::try_from(magnitude).map_err(|_| MathError::Overflow)?;
    Ok(if delta >= 0 { magnitude } else { -magnitude })
}

/// Splits a signed funding amount into (paid, received), both non-negative.
pub fn funding_parts(funding_usd: i64) -> (u64, u64) {
    if funding_usd >= 0 {
        (funding_usd.unsigned_abs(), 0)
    } else {
        (0, funding_usd.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USD: u64 = 1_000_000;

    #[test]
    fn worked_example_heavy_longs_pay_light_shorts() {
        // Longs $3000, shorts $1000, pool $100,000, C = 100: skew 2000 / (100 × 100,000) = 0.02%/h.
        let rate = funding_rate(3_000 * USD, 1_000 * USD, 100_000 * USD, 100, RATE_ONE).unwrap();
        assert_eq!(rate, 200_000);
        let (l, s) = accrue_funding(0, 0, rate, 3_600, 3_000 * USD, 1_000 * USD).unwrap();
        // A $1000 long pays $0.20 over the hour; a $1000 short receives 3 × $0.20 = $0.60.
        assert_eq!(funding_usd(1_000 * USD, l, 0), Ok(200_000));
        assert_eq!(funding_usd(1_000 * USD, s, 0), Ok(-600_000));
        // Everything paid is received: 3000 × 0.02% = $0.60 = 1000 × 0.06%.
    }

    #[test]
    fn heavy_shorts_pay_and_cap_and_off_switch() {
        let rate = funding_rate(0, 5_000 * USD, 1_000 * USD, 1, 10_000_000).unwrap();
        assert_eq!(rate, -10_000_000); // capped at 1%/h
        let (l, s) = accrue_funding(0, 0, rate, 60, 0, 5_000 * USD).unwrap();
        assert_eq!(l, 0); // no longs: shorts pay the pool
        assert!(s > 0);
        assert_eq!(funding_rate(10, 0, 1, 0, RATE_ONE), Ok(0));
        assert_eq!(funding_rate(7, 7, 1, 5, RATE_ONE), Ok(0));
    }

    #[test]
    fn receivers_never_get_more_than_payers_pay() {
        for (lo, so) in [(3u64, 7u64), (1_000_001, 999_999), (5, 1), (123_456_789, 3)] {
            let rate = funding_rate(lo * USD, so * USD, 10 * USD, 1, RATE_ONE).unwrap();
            let (l, s) = accrue_funding(0, 0, rate, 7, lo * USD, so * USD).unwrap();
            let paid_by_longs = funding_usd(lo * USD, l, 0).unwrap();
            let paid_by_shorts = funding_usd(so * USD, s, 0).unwrap();
            assert!(paid_by_longs + paid_by_shorts >= 0, "{lo} {so}");
        }
    }
}
