//! Borrow fees: utilization, the rate curve, and the cumulative per-custody index.
//!
//! Model (DESIGN §4): each borrowed custody keeps a cumulative index `idx` in units of
//! [`INDEX_ONE`] (hourly rate with 9 decimals × seconds; `INDEX_ONE` = 100% of size accrued).
//! `accrue_borrow` does `idx += rate × Δt` using the hourly rate from the current utilization; a
//! position snapshots `idx` at open and owes `(idx_now − snapshot) × size / INDEX_ONE`. The seed
//! "hourly rate × utilization" is the general curve with base = 0, slope1 = hourly rate,
//! slope2 = 0, optimal = 100%.
//!
//! Ordering rule for callers: accrue the index *before* any instruction changes `locked` or
//! `owned`, so the elapsed interval is charged at the utilization that held during it.
//!
//! The rate and the fee round UP (the pool is never under-paid); the index itself is exact, so a
//! permissionless crank calling `accrue_index` as often as it likes changes nothing: the fee is
//! rounded once, when it is charged.

use super::checked::{mul_div_ceil, mul_div_ceil_u64, mul_div_floor_u64, to_u64};
use super::{MathError, MathResult, RATE_ONE, SECONDS_PER_HOUR};

/// `floor(locked × 1e9 / owned)`, 0 when nothing is owned. Floor *under*-states utilization;
/// prefer [`utilization_ceil`] for anything that protects the pool (rate, max-utilization cap),
/// use this only for display. `InvalidInput` if `locked > owned` (broken invariant).
pub fn utilization_floor(locked: u64, owned: u64) -> MathResult<u64> {
    utilization(locked, owned, false)
}

/// `ceil(locked × 1e9 / owned)`, 0 when nothing is owned. Pool-favourable: use it for the
/// borrow rate (higher rate) and for the max-utilization check (`utilization_ceil <= max`
/// rejects a borderline open). `InvalidInput` if `locked > owned`.
pub fn utilization_ceil(locked: u64, owned: u64) -> MathResult<u64> {
    utilization(locked, owned, true)
}

fn utilization(locked: u64, owned: u64, round_up: bool) -> MathResult<u64> {
    if locked > owned {
        return Err(MathError::InvalidInput);
    }
    if owned == 0 {
        return Ok(0);
    }
    if round_up {
        mul_div_ceil_u64(locked, RATE_ONE, owned)
    } else {
        mul_div_floor_u64(locked, RATE_ONE, owned)
    }
}

/// Parameters of the kinked borrow-rate curve, all in RATE_DECIMALS per hour (rates) or as a
/// RATE_DECIMALS fraction (optimal utilization).
///
/// `rate(u) = base + slope1 × min(u, opt) / opt + slope2 × max(0, u − opt) / (1e9 − opt)`
///
/// Each term rounds up. Degenerate kinks follow the formula's limit: with `opt = 0` the first
/// segment is complete at any `u`, so it contributes `slope1`; with `opt = 1e9` the second
/// segment never starts. `InvalidInput` if `utilization` or `optimal_utilization` exceed 1e9.
pub fn hourly_borrow_rate(
    utilization: u64,
    base_rate: u64,
    slope1: u64,
    slope2: u64,
    optimal_utilization: u64,
) -> MathResult<u64> {
    if utilization > RATE_ONE || optimal_utilization > RATE_ONE {
        return Err(MathError::InvalidInput);
    }
    let first = if utilization >= optimal_utilization {
        slope1
    } else {
        // 0 <= utilization < optimal, so optimal > 0 here.
        mul_div_ceil_u64(slope1, utilization, optimal_utilization)?
    };
    let second = if utilization <= optimal_utilization {
        0
    } else {
        // utilization > optimal implies optimal < 1e9, so the divisor is non-zero.
        mul_div_ceil_u64(
            slope2,
            utilization - optimal_utilization,
            RATE_ONE - optimal_utilization,
        )?
    };
    base_rate
        .checked_add(first)
        .and_then(|r| r.checked_add(second))
        .ok_or(MathError::Overflow)
}

/// Scale of the cumulative index: hourly rate (1e9 = 100%) × seconds. One hour at 100% per hour
/// adds `INDEX_ONE`.
pub const INDEX_ONE: u128 = RATE_ONE as u128 * SECONDS_PER_HOUR as u128;

/// Advance a cumulative index by `hourly_rate × elapsed_secs` (units of [`INDEX_ONE`]). Exact:
/// no rounding happens here, so however often anyone accrues, the index is the same, and
/// `elapsed_secs = 0` adds nothing.
pub fn accrue_index(index: u128, hourly_rate: u64, elapsed_secs: u64) -> MathResult<u128> {
    let increment = u128::from(hourly_rate)
        .checked_mul(u128::from(elapsed_secs))
        .ok_or(MathError::Overflow)?;
    index.checked_add(increment).ok_or(MathError::Overflow)
}

/// Borrow fee owed since the position's snapshot: `ceil((index_now − snapshot) × size /
/// INDEX_ONE)`, the only rounding of the borrow fee (up, in the pool's favour).
/// `InvalidInput` if the snapshot is ahead of the index (indices only grow).
pub fn borrow_fee_usd(size_usd: u64, index_now: u128, index_snapshot: u128) -> MathResult<u64> {
    let delta = index_now
        .checked_sub(index_snapshot)
        .ok_or(MathError::InvalidInput)?;
    to_u64(mul_div_ceil(delta, u128::from(size_usd), INDEX_ONE)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::pseudo_random_u64s;

    const HOURLY_0_01_PCT: u64 = 100_000; // 0.01% in 1e9 units
    const SIZE_1000_USD: u64 = 1_000_000_000;

    /// DESIGN §4 / issue 3 seed: utilization 50%, 0.01%/h, size $1000 → $0.05 after one hour.
    #[test]
    fn seed_borrow_fee_is_five_cents_per_hour() {
        let u = utilization_ceil(500, 1_000).unwrap();
        assert_eq!(u, 500_000_000);
        assert_eq!(utilization_floor(500, 1_000), Ok(u));
        let rate = hourly_borrow_rate(u, 0, HOURLY_0_01_PCT, 0, RATE_ONE).unwrap();
        assert_eq!(rate, 50_000);
        let index0 = 1_000_000_000u128; // any starting index works
        let index1 = accrue_index(index0, rate, 3_600).unwrap();
        assert_eq!(borrow_fee_usd(SIZE_1000_USD, index1, index0), Ok(50_000)); // $0.05
                                                                               // Two hours → $0.10.
        let index2 = accrue_index(index1, rate, 3_600).unwrap();
        assert_eq!(borrow_fee_usd(SIZE_1000_USD, index2, index0), Ok(100_000));
    }

    #[test]
    fn accrual_idempotent_and_splittable() {
        let rate = 50_000;
        assert_eq!(accrue_index(777, rate, 0), Ok(777));
        assert_eq!(accrue_index(777, 0, 3_600), Ok(777));
        let once = accrue_index(0, rate, 3_600).unwrap();
        let twice = accrue_index(accrue_index(0, rate, 1_800).unwrap(), rate, 1_800).unwrap();
        assert_eq!(once, twice);
        // Accruing every second gives exactly the same index: cranking cannot inflate fees.
        let by_seconds = (0..3_600)
            .try_fold(0u128, |i, _| accrue_index(i, rate, 1))
            .unwrap();
        assert_eq!(by_seconds, once);
        assert_eq!(accrue_index(u128::MAX, 1, 3_600), Err(MathError::Overflow));
    }

    #[test]
    fn utilization_edges() {
        assert_eq!(utilization_floor(0, 0), Ok(0));
        assert_eq!(utilization_ceil(0, 0), Ok(0));
        assert_eq!(utilization_floor(1, 3), Ok(333_333_333));
        assert_eq!(utilization_ceil(1, 3), Ok(333_333_334));
        assert_eq!(utilization_ceil(u64::MAX, u64::MAX), Ok(RATE_ONE));
        assert_eq!(utilization_floor(2, 1), Err(MathError::InvalidInput));
    }

    #[test]
    fn rate_curve_segments() {
        let (base, s1, s2, opt) = (10_000, 100_000, 1_000_000, 800_000_000);
        assert_eq!(hourly_borrow_rate(0, base, s1, s2, opt), Ok(10_000));
        assert_eq!(
            hourly_borrow_rate(400_000_000, base, s1, s2, opt),
            Ok(60_000)
        );
        assert_eq!(hourly_borrow_rate(opt, base, s1, s2, opt), Ok(110_000));
        assert_eq!(
            hourly_borrow_rate(900_000_000, base, s1, s2, opt),
            Ok(610_000)
        );
        assert_eq!(
            hourly_borrow_rate(RATE_ONE, base, s1, s2, opt),
            Ok(1_110_000)
        );
        // opt = 100%: second slope never applies.
        assert_eq!(hourly_borrow_rate(RATE_ONE, 0, s1, s2, RATE_ONE), Ok(s1));
        // opt = 0: the first segment is always complete.
        assert_eq!(hourly_borrow_rate(0, 0, s1, s2, 0), Ok(s1));
        assert_eq!(
            hourly_borrow_rate(500_000_000, 0, s1, s2, 0),
            Ok(s1 + s2 / 2)
        );
        // Rounds up: 1/3 of 100_000.
        assert_eq!(hourly_borrow_rate(1, 0, 1, 0, 3), Ok(1));
        assert_eq!(
            hourly_borrow_rate(RATE_ONE + 1, 0, s1, s2, opt),
            Err(MathError::InvalidInput)
        );
        assert_eq!(
            hourly_borrow_rate(0, 0, s1, s2, RATE_ONE + 1),
            Err(MathError::InvalidInput)
        );
        assert_eq!(
            hourly_borrow_rate(RATE_ONE, u64::MAX, 1, 0, RATE_ONE),
            Err(MathError::Overflow)
        );
    }

    #[test]
    fn borrow_fee_edges() {
        assert_eq!(borrow_fee_usd(SIZE_1000_USD, 5, 5), Ok(0));
        assert_eq!(
            borrow_fee_usd(SIZE_1000_USD, 4, 5),
            Err(MathError::InvalidInput)
        );
        // One index unit on $1 (1e6 units) is far below one unit → rounds up to 1.
        assert_eq!(borrow_fee_usd(1_000_000, 1, 0), Ok(1));
        assert_eq!(
            borrow_fee_usd(u64::MAX, u128::MAX, 0),
            Err(MathError::Overflow)
        );
    }

    /// The rate is monotone in utilization and the fee is never below the exact rational value.
    #[test]
    fn property_monotone_rate_and_fee_not_under_exact() {
        let (base, s1, s2, opt) = (1_000, 123_457, 9_876_543, 750_000_000);
        let mut last = 0;
        for u in (0..=RATE_ONE).step_by(7_654_321).chain([RATE_ONE]) {
            let r = hourly_borrow_rate(u, base, s1, s2, opt).unwrap();
            assert!(r >= last);
            last = r;
        }
        for size in pseudo_random_u64s(200, 5) {
            for delta in [1u128, 7, 50_000, 999_999_999, 1_000_000_001] {
                let fee = borrow_fee_usd(size, delta, 0).unwrap();
                let exact = delta * u128::from(size);
                assert!(u128::from(fee) * INDEX_ONE >= exact);
                assert!(u128::from(fee) * INDEX_ONE < exact + INDEX_ONE);
            }
        }
    }
}
