//! Multi-step liquidation.
//!
//! A custody lists up to [`MAX_STEPS`] steps in order of falling margin. Step `i` applies when
//! `margin < ceil(size × maintenance_bps × margin_fraction_bps_i / 10_000²)` (margin as in
//! [`super::margin_usd`]); the deepest step that applies decides the fraction of the position
//! closed. Step 0's fraction is 10_000 (the maintenance margin itself) and the last step
//! closes everything, so a position is liquidatable exactly when step 0 applies, and one in
//! bad debt (margin < 0) is always closed in full.
//!
//! The liquidator's discount grows stepwise with depth: `ceil(full × (i + 1) / n)` bps of the
//! closed size at step `i` of `n`, reaching the full discount at the last step. The one-step
//! configuration `[{10_000, 10_000}]` is the plain auto-close at the maintenance margin.

use super::checked::{mul_div_ceil, mul_div_ceil_u64, to_u64};
use super::{MathError, MathResult, BPS_DENOMINATOR};

pub const MAX_STEPS: usize = 4;

/// One rung: below `margin_fraction_bps` of the maintenance margin, close `close_bps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Step {
    pub margin_fraction_bps: u64,
    pub close_bps: u64,
}

/// Whether `steps` is a valid ladder: 1..=MAX_STEPS steps, first fraction exactly 10_000,
/// fractions strictly falling and positive, close fractions in (0, 10_000], non-decreasing,
/// the last one 10_000.
pub fn steps_are_valid(steps: &[Step]) -> bool {
    let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
        return false;
    };
    steps.len() <= MAX_STEPS
        && first.margin_fraction_bps == BPS_DENOMINATOR
        && last.close_bps == BPS_DENOMINATOR
        && steps.iter().all(|s| s.margin_fraction_bps > 0 && s.close_bps > 0 && s.close_bps <= BPS_DENOMINATOR)
        && steps.windows(2).all(|w| w[1].margin_fraction_bps < w[0].margin_fraction_bps && w[1].close_bps >= w[0].close_bps)
}

/// Margin (USD) below which step `step` applies.
pub fn step_threshold_usd(size_usd: u64, maintenance_bps: u64, step: &Step) -> MathResult<u64> {
    let denominator = u128::from(BPS_DENOMINATOR) * u128::from(BPS_DENOMINATOR);
    let numerator = u128::from(maintenance_bps).checked_mul(u128::from(step.margin_fraction_bps)).ok_or(MathError::Overflow)?;
    to_u64(mul_div_ceil(u128::from(size_usd), numerator, denominator)?)
}

/// Index of the deepest step whose threshold `margin_usd` is strictly below, or `None` when the
/// position is healthy.
pub fn liquidation_step(margin_usd: i128, size_usd: u64, maintenance_bps: u64, steps: &[Step]) -> MathResult<Option<usize>> {
    let mut deepest = None;
    for (i, step) in steps.iter().enumerate() {
        if margin_usd < i128::from(step_threshold_usd(size_usd, maintenance_bps, step)?) {
            deepest = Some(i);
        }
    }
    Ok(deepest)
}

/// Liquidator discount (bps of the closed size) at step `index` of `count`.
pub fn step_discount_bps(full_discount_bps: u64, index: usize, count: usize) -> MathResult<u64> {
    if count == 0 || index >= count {
        return Err(MathError::InvalidInput);
    }
    mul_div_ceil_u64(full_discount_bps, index as u64 + 1, count as u64)
}

/// A liquidation discount (tokens) divided between the liquidator, the insurance fund and the
/// protocol: `insurance_fraction_bps` of it (rounded down) is meant for the fund, which takes
/// at most `insurance_room` (what is left under its cap); the excess goes to the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscountSplit {
    pub liquidator: u64,
    pub insurance: u64,
    pub protocol: u64,
}

pub fn split_discount(discount: u64, insurance_fraction_bps: u64, insurance_room: u64) -> MathResult<DiscountSplit> {
    if insurance_fraction_bps > BPS_DENOMINATOR {
        return Err(MathError::InvalidInput);
    }
    let for_fund = super::mul_div_floor_u64(discount, insurance_fraction_bps, BPS_DENOMINATOR)?;
    let insurance = for_fund.min(insurance_room);
    Ok(DiscountSplit { liquidator: discount - for_fund, insurance, protocol: for_fund - insurance })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_STEPS: [Step; 2] = [
        Step { margin_fraction_bps: 10_000, close_bps: 5_000 },
        Step { margin_fraction_bps: 5_000, close_bps: 10_000 },
    ];

    #[test]
    fn ladder_validation() {
        assert!(steps_are_valid(&TWO_STEPS));
        assert!(steps_are_valid(&[Step { margin_fraction_bps: 10_000, close_bps: 10_000 }]));
        assert!(!steps_are_valid(&[]));
        assert!(!steps_are_valid(&[Step { margin_fraction_bps: 9_000, close_bps: 10_000 }]));
        assert!(!steps_are_valid(&[Step { margin_fraction_bps: 10_000, close_bps: 5_000 }]));
        let rising = [TWO_STEPS[0], Step { margin_fraction_bps: 10_000, close_bps: 10_000 }];
        assert!(!steps_are_valid(&rising));
        let shrinking_close = [Step { margin_fraction_bps: 10_000, close_bps: 10_000 }, Step { margin_fraction_bps: 1, close_bps: 5_000 }];
        assert!(!steps_are_valid(&shrinking_close));
        assert!(!steps_are_valid(&[TWO_STEPS[0]; 5]));
    }

    #[test]
    fn steps_walk_down_with_the_margin() {
        // Size $1000, MMR 100 bps: step 0 below $10, step 1 below $5.
        let size = 1_000_000_000;
        assert_eq!(liquidation_step(10_000_000, size, 100, &TWO_STEPS), Ok(None));
        assert_eq!(liquidation_step(9_999_999, size, 100, &TWO_STEPS), Ok(Some(0)));
        assert_eq!(liquidation_step(5_000_000, size, 100, &TWO_STEPS), Ok(Some(0)));
        assert_eq!(liquidation_step(4_999_999, size, 100, &TWO_STEPS), Ok(Some(1)));
        assert_eq!(liquidation_step(-1, size, 100, &TWO_STEPS), Ok(Some(1)));
    }

    #[test]
    fn one_step_matches_the_plain_threshold() {
        let one = [Step { margin_fraction_bps: 10_000, close_bps: 10_000 }];
        for (margin, size) in [(3_999i128, 1_000_000u64), (4_000, 1_000_000), (0, 1), (-5, 7), (399, 100_000)] {
            let threshold = super::super::maintenance_margin_usd(size, 40).unwrap();
            assert_eq!(liquidation_step(margin, size, 40, &one).unwrap().is_some(), margin < i128::from(threshold));
        }
    }

    #[test]
    fn discount_grows_to_the_full_value() {
        assert_eq!(step_discount_bps(100, 0, 2), Ok(50));
        assert_eq!(step_discount_bps(100, 1, 2), Ok(100));
        assert_eq!(step_discount_bps(100, 0, 1), Ok(100));
        assert_eq!(step_discount_bps(100, 0, 3), Ok(34));
        assert_eq!(step_discount_bps(100, 2, 2), Err(MathError::InvalidInput));
    }

    #[test]
    fn discount_split_respects_the_cap() {
        assert_eq!(split_discount(1_000, 2_000, u64::MAX), Ok(DiscountSplit { liquidator: 800, insurance: 200, protocol: 0 }));
        assert_eq!(split_discount(1_000, 2_000, 50), Ok(DiscountSplit { liquidator: 800, insurance: 50, protocol: 150 }));
        assert_eq!(split_discount(1_000, 0, 50), Ok(DiscountSplit { liquidator: 1_000, insurance: 0, protocol: 0 }));
        assert_eq!(split_discount(1, 10_001, 0), Err(MathError::InvalidInput));
    }
}
