//! Margin, leverage and the auto-close (liquidation) condition.
//!
//! `margin = collateral + profit − loss − fees` (may be negative). A position is liquidatable
//! iff `margin < ceil(size × maintenance_bps / 10_000)`: the threshold rounds UP and the
//! comparison is strict, so a position exactly at the threshold survives and one unit below
//! does not. DESIGN §4 states the seed as "collateral − fees − unrealized loss < 0.4% of size";
//! for a losing position (profit = 0) that is the same formula. Callers who want unrealized
//! profit ignored as well pass `profit = 0`.
//!
//! With max leverage `L` (bps), the maintenance margin is `ceil(1e8 / L)` bps: 250x
//! (2_500_000 bps) → 40 bps = 0.4%, and a position opened at exactly 250x sits exactly at the
//! threshold (not liquidatable until it loses one unit).

use super::checked::{mul_div_ceil, mul_div_ceil_u64, mul_div_floor};
use super::{MathError, MathResult, Side, BPS_DENOMINATOR};

/// `collateral + profit − loss − fees` in i128 (cannot overflow: four u64 terms).
pub fn margin_usd(collateral_usd: u64, profit_usd: u64, loss_usd: u64, fees_usd: u64) -> i128 {
    i128::from(collateral_usd) + i128::from(profit_usd)
        - i128::from(loss_usd)
        - i128::from(fees_usd)
}

/// Maintenance margin in USD: `ceil(size × maintenance_bps / 10_000)` (rounded up: the pool
/// requires at least the exact fraction).
pub fn maintenance_margin_usd(size_usd: u64, maintenance_margin_bps: u64) -> MathResult<u64> {
    mul_div_ceil_u64(size_usd, maintenance_margin_bps, BPS_DENOMINATOR)
}

/// True iff `margin_usd(...) < maintenance_margin_usd(size, bps)` (strict).
pub fn is_liquidatable(
    collateral_usd: u64,
    profit_usd: u64,
    loss_usd: u64,
    fees_usd: u64,
    size_usd: u64,
    maintenance_margin_bps: u64,
) -> MathResult<bool> {
    let margin = margin_usd(collateral_usd, profit_usd, loss_usd, fees_usd);
    let threshold = maintenance_margin_usd(size_usd, maintenance_margin_bps)?;
    Ok(margin < i128::from(threshold))
}

/// `ceil(10_000 × 10_000 / max_leverage_bps)`: the maintenance margin (bps) implied by a max
/// leverage (bps). Rounded up so the implied max leverage is never above the configured one.
/// 250x = 2_500_000 bps → 40 bps. `DivisionByZero` for a zero leverage.
pub fn maintenance_margin_bps_for_max_leverage(max_leverage_bps: u64) -> MathResult<u64> {
    mul_div_ceil_u64(BPS_DENOMINATOR, BPS_DENOMINATOR, max_leverage_bps)
}

/// Leverage in bps, `ceil(size × 10_000 / margin)`. Rounding up makes `leverage_bps <= max`
/// exactly equivalent to the rational `size / margin <= max / 10_000` (no bp of slack).
/// Saturates at `u64::MAX` — "infinite", fails every bound — when margin ≤ 0 or the value does
/// not fit; it is only ever compared against a maximum, so saturation is the safe direction.
pub fn leverage_bps(size_usd: u64, margin_usd: i128) -> u64 {
    let Ok(margin) = u128::try_from(margin_usd) else {
        return u64::MAX;
    };
    if margin == 0 {
        return u64::MAX;
    }
    match mul_div_ceil(u128::from(size_usd), u128::from(BPS_DENOMINATOR), margin) {
        Ok(v) => u64::try_from(v).unwrap_or(u64::MAX),
        Err(_) => u64::MAX,
    }
}

/// Price (9 dp) at which `margin == maintenance margin`, ignoring profit/loss rounding:
///
/// - long:  `entry × (size + threshold + fees − collateral) / size`, rounded UP;
/// - short: `entry × (size + collateral − fees − threshold) / size`, rounded DOWN;
///
/// i.e. rounded toward the side that liquidates earlier, so the displayed price never promises
/// more room than the program grants: every price strictly below a long's (above a short's)
/// result is liquidatable by [`is_liquidatable`]. A long returns 0 when no positive price
/// liquidates it; a short returns 0 when every price does. A value beyond u64 saturates at
/// `u64::MAX` (long: liquidatable at any price; short: at no representable price).
/// `InvalidInput` for a zero size; `Overflow` only if an intermediate exceeds u128.
pub fn liquidation_price(
    side: Side,
    entry_price_9dp: u64,
    size_usd: u64,
    collateral_usd: u64,
    fees_usd: u64,
    maintenance_margin_bps: u64,
) -> MathResult<u64> {
    if size_usd == 0 {
        return Err(MathError::InvalidInput);
    }
    let threshold = i128::from(maintenance_margin_usd(size_usd, maintenance_margin_bps)?);
    let size = i128::from(size_usd);
    let (collateral, fees) = (i128::from(collateral_usd), i128::from(fees_usd));
    // Price factor numerator over `size`; at most ~3 × u64, non-negative after the check.
    let factor = match side {
        Side::Long => size + threshold + fees - collateral,
        Side::Short => size + collateral - fees - threshold,
    };
    let Ok(factor) = u128::try_from(factor) else {
        return Ok(0);
    };
    let entry = u128::from(entry_price_9dp);
    let size = u128::from(size_usd);
    let price = match side {
        Side::Long => mul_div_ceil(entry, factor, size)?,
        Side::Short => mul_div_floor(entry, factor, size)?,
    };
    Ok(u64::try_from(price).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::position_pnl;
    use crate::math::test_values::pseudo_random_u64s;

    const MAX_LEVERAGE_250X: u64 = 2_500_000;
    const USD: u64 = 1_000_000;

    #[test]
    fn maintenance_from_max_leverage() {
        assert_eq!(
            maintenance_margin_bps_for_max_leverage(MAX_LEVERAGE_250X),
            Ok(40)
        );
        assert_eq!(maintenance_margin_bps_for_max_leverage(1_000_000), Ok(100)); // 100x → 1%
        assert_eq!(maintenance_margin_bps_for_max_leverage(3_000_000), Ok(34)); // 33.33 → 34
        assert_eq!(
            maintenance_margin_bps_for_max_leverage(0),
            Err(MathError::DivisionByZero)
        );
    }

    #[test]
    fn position_at_250x_is_exactly_at_the_limit() {
        let mm = maintenance_margin_bps_for_max_leverage(MAX_LEVERAGE_250X).unwrap();
        let (size, collateral) = (250 * USD, USD);
        assert_eq!(
            leverage_bps(size, margin_usd(collateral, 0, 0, 0)),
            MAX_LEVERAGE_250X
        );
        assert_eq!(maintenance_margin_usd(size, mm), Ok(collateral));
        // Margin == threshold: not liquidatable. One unit of loss or fee: liquidatable.
        assert_eq!(is_liquidatable(collateral, 0, 0, 0, size, mm), Ok(false));
        assert_eq!(is_liquidatable(collateral, 0, 1, 0, size, mm), Ok(true));
        assert_eq!(is_liquidatable(collateral, 0, 0, 1, size, mm), Ok(true));
        // One unit less collateral is beyond 250x and below the threshold.
        assert!(leverage_bps(size, margin_usd(collateral - 1, 0, 0, 0)) > MAX_LEVERAGE_250X);
        assert_eq!(is_liquidatable(collateral - 1, 0, 0, 0, size, mm), Ok(true));
    }

    #[test]
    fn threshold_boundary_is_strict() {
        // size $1000 at 40 bps → threshold $4; margin = 10 + profit − loss − fees.
        let (size, mm) = (1_000 * USD, 40);
        let threshold = maintenance_margin_usd(size, mm).unwrap();
        assert_eq!(threshold, 4 * USD);
        let loss_at_threshold = 10 * USD - threshold;
        assert_eq!(
            is_liquidatable(10 * USD, 0, loss_at_threshold, 0, size, mm),
            Ok(false)
        );
        assert_eq!(
            is_liquidatable(10 * USD, 0, loss_at_threshold + 1, 0, size, mm),
            Ok(true)
        );
        // Threshold rounds up: 1 unit of size at 40 bps needs 1 unit of margin.
        assert_eq!(maintenance_margin_usd(1, 40), Ok(1));
        assert_eq!(is_liquidatable(1, 0, 0, 0, 1, 40), Ok(false));
        assert_eq!(is_liquidatable(0, 0, 0, 0, 1, 40), Ok(true));
        // Profit counts toward margin.
        assert_eq!(is_liquidatable(USD, 5, 0, 0, 250 * USD + 1, 40), Ok(false));
        // Negative margin (loss beyond collateral) is liquidatable.
        assert_eq!(is_liquidatable(USD, 0, 3 * USD, 0, 250 * USD, 40), Ok(true));
        assert_eq!(margin_usd(USD, 0, 3 * USD, 0), -2 * i128::from(USD));
    }

    #[test]
    fn leverage_examples() {
        assert_eq!(
            leverage_bps(100 * USD, margin_usd(50 * USD, 0, 0, 0)),
            20_000
        ); // 2x
        assert_eq!(leverage_bps(100, 3), 333_334); // 33.33x rounds up
        assert_eq!(leverage_bps(100, 0), u64::MAX);
        assert_eq!(leverage_bps(100, -5), u64::MAX);
        assert_eq!(leverage_bps(u64::MAX, 1), u64::MAX);
        assert_eq!(leverage_bps(0, 1), 0);
    }

    #[test]
    fn liquidation_price_examples() {
        // 2x long at $150, collateral $50 of $100, 40 bps: threshold $0.40,
        // price = 150 × (100 + 0.4 − 50) / 100 = $75.60.
        let entry = 150_000_000_000;
        let lp = liquidation_price(Side::Long, entry, 100 * USD, 50 * USD, 0, 40).unwrap();
        assert_eq!(lp, 75_600_000_000);
        // Short mirror: 150 × (100 + 50 − 0.4) / 100 = $224.40.
        let sp = liquidation_price(Side::Short, entry, 100 * USD, 50 * USD, 0, 40).unwrap();
        assert_eq!(sp, 224_400_000_000);
        // Fees move both toward entry: $10 fees → long $90.60, short $209.40.
        assert_eq!(
            liquidation_price(Side::Long, entry, 100 * USD, 50 * USD, 10 * USD, 40),
            Ok(90_600_000_000)
        );
        assert_eq!(
            liquidation_price(Side::Short, entry, 100 * USD, 50 * USD, 10 * USD, 40),
            Ok(209_400_000_000)
        );
        // Over-collateralized long never liquidates at a positive price.
        assert_eq!(
            liquidation_price(Side::Long, entry, 100 * USD, 200 * USD, 0, 40),
            Ok(0)
        );
        // Short already under water at any price → 0 (every price liquidates).
        assert_eq!(
            liquidation_price(Side::Short, entry, 100 * USD, 0, 200 * USD, 40),
            Ok(0)
        );
        // Saturation and errors.
        assert_eq!(
            liquidation_price(Side::Long, u64::MAX, 1, 0, u64::MAX, 40),
            Ok(u64::MAX)
        );
        assert_eq!(
            liquidation_price(Side::Long, entry, 0, 1, 0, 40),
            Err(MathError::InvalidInput)
        );
        // Rounds toward earlier liquidation: 1/3 cases.
        assert_eq!(liquidation_price(Side::Long, 10, 3, 1, 0, 0), Ok(7)); // 6.67 → 7
        assert_eq!(liquidation_price(Side::Short, 10, 3, 1, 0, 0), Ok(13)); // 13.33 → 13
    }

    /// Every price strictly past the reported liquidation price is liquidatable by the
    /// program's own PnL + threshold math, and a price a few units inside it is not.
    #[test]
    fn property_liquidation_price_is_conservative_and_tight() {
        let entries = [
            150_250_000_000u64,
            1_000_000_000,
            61_234_567_890_123,
            3_333_333_333,
        ];
        let sizes: Vec<u64> = pseudo_random_u64s(25, 41)
            .map(|s| s % (1u64 << 44) + 1_000)
            .collect();
        for &entry in &entries {
            for &size in &sizes {
                for (lev_x, fees_bps) in [(2u64, 0u64), (10, 10), (50, 7), (250, 0), (200, 30)] {
                    let collateral = size / lev_x;
                    let fees = mul_div_ceil_u64(size, fees_bps, BPS_DENOMINATOR).unwrap();
                    let liquidatable_at = |side, price| {
                        let pnl = position_pnl(side, entry, price, size).unwrap();
                        is_liquidatable(collateral, pnl.profit_usd, pnl.loss_usd, fees, size, 40)
                            .unwrap()
                    };
                    // A price step moves PnL by size/entry per unit; "inside" by 3 USD units.
                    let slack = entry / size + 1;
                    let lp =
                        liquidation_price(Side::Long, entry, size, collateral, fees, 40).unwrap();
                    if lp > 0 {
                        assert!(
                            liquidatable_at(Side::Long, lp - 1),
                            "long {entry} {size} {lev_x}"
                        );
                        assert!(
                            !liquidatable_at(Side::Long, lp + 3 * slack),
                            "long not tight"
                        );
                    }
                    let sp =
                        liquidation_price(Side::Short, entry, size, collateral, fees, 40).unwrap();
                    if sp > 0 && sp < u64::MAX {
                        assert!(
                            liquidatable_at(Side::Short, sp + 1),
                            "short {entry} {size} {lev_x}"
                        );
                        assert!(
                            !liquidatable_at(Side::Short, sp - 3 * slack),
                            "short not tight"
                        );
                    }
                }
            }
        }
    }
}
