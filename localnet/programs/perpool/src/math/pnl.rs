//! Position profit and loss from stored 9-dp prices.
//!
//! `size_usd` is the position's USD value at entry, so the position holds `size / entry` tokens
//! and `pnl = size × (exit − entry) / entry` for a long, `size × (entry − exit) / entry` for a
//! short. Profit rounds DOWN and loss rounds UP, so every rounding unit stays with the pool.

use super::checked::{mul_div_ceil_u64, mul_div_floor_u64};
use super::{MathError, MathResult, OraclePrice};

/// Direction of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Long,
    Short,
}

/// Unrealized (or realized at close) PnL of a position; at most one field is non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pnl {
    pub profit_usd: u64,
    pub loss_usd: u64,
}

/// Price to store as a position's entry price: a long enters high (ceil), a short low (floor).
/// Both directions shrink the trader's profit and grow the loss by at most one 9-dp unit.
pub fn entry_price_9dp(side: Side, price: &OraclePrice) -> MathResult<u64> {
    match side {
        Side::Long => price.to_price_9dp_ceil(),
        Side::Short => price.to_price_9dp_floor(),
    }
}

/// Price at which a position is valued or closed: a long exits low (floor), a short high (ceil).
pub fn exit_price_9dp(side: Side, price: &OraclePrice) -> MathResult<u64> {
    match side {
        Side::Long => price.to_price_9dp_floor(),
        Side::Short => price.to_price_9dp_ceil(),
    }
}

/// PnL of `size_usd` opened at `entry_price_9dp` and valued at `exit_price_9dp`.
/// Profit `floor(size × |Δ| / entry)`, loss `ceil(size × |Δ| / entry)`.
/// `DivisionByZero` on a zero entry price; `Overflow` if the profit/loss exceeds u64 (a short
/// whose price rose by a factor beyond ~1.8e13 on a $1 size, i.e. never in practice).
pub fn position_pnl(
    side: Side,
    entry_price_9dp: u64,
    exit_price_9dp: u64,
    size_usd: u64,
) -> MathResult<Pnl> {
    if entry_price_9dp == 0 {
        return Err(MathError::DivisionByZero);
    }
    let price_rose = exit_price_9dp >= entry_price_9dp;
    let move_abs = exit_price_9dp.abs_diff(entry_price_9dp);
    let trader_gains = match side {
        Side::Long => price_rose,
        Side::Short => !price_rose,
    };
    if trader_gains {
        Ok(Pnl {
            profit_usd: mul_div_floor_u64(size_usd, move_abs, entry_price_9dp)?,
            loss_usd: 0,
        })
    } else {
        Ok(Pnl {
            profit_usd: 0,
            loss_usd: mul_div_ceil_u64(size_usd, move_abs, entry_price_9dp)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::{pseudo_random_u64s, SAMPLE_U64S};

    const P150: u64 = 150_000_000_000;
    const P180: u64 = 180_000_000_000;
    const P120: u64 = 120_000_000_000;
    const SIZE_100: u64 = 100_000_000;

    fn pnl(profit_usd: u64, loss_usd: u64) -> Pnl {
        Pnl {
            profit_usd,
            loss_usd,
        }
    }

    #[test]
    fn long_and_short_twenty_percent() {
        assert_eq!(
            position_pnl(Side::Long, P150, P180, SIZE_100),
            Ok(pnl(20_000_000, 0))
        );
        assert_eq!(
            position_pnl(Side::Long, P150, P120, SIZE_100),
            Ok(pnl(0, 20_000_000))
        );
        assert_eq!(
            position_pnl(Side::Short, P150, P120, SIZE_100),
            Ok(pnl(20_000_000, 0))
        );
        assert_eq!(
            position_pnl(Side::Short, P150, P180, SIZE_100),
            Ok(pnl(0, 20_000_000))
        );
        assert_eq!(
            position_pnl(Side::Long, P150, P150, SIZE_100),
            Ok(pnl(0, 0))
        );
        assert_eq!(
            position_pnl(Side::Short, P150, P150, SIZE_100),
            Ok(pnl(0, 0))
        );
    }

    #[test]
    fn rounding_and_errors() {
        // $1 size, 1/3 move: profit floors, loss ceils.
        assert_eq!(
            position_pnl(Side::Long, 3, 4, 1_000_000),
            Ok(pnl(333_333, 0))
        );
        assert_eq!(
            position_pnl(Side::Long, 3, 2, 1_000_000),
            Ok(pnl(0, 333_334))
        );
        assert_eq!(
            position_pnl(Side::Short, 3, 2, 1_000_000),
            Ok(pnl(333_333, 0))
        );
        assert_eq!(
            position_pnl(Side::Short, 3, 4, 1_000_000),
            Ok(pnl(0, 333_334))
        );
        // Long to zero loses exactly the size.
        assert_eq!(
            position_pnl(Side::Long, P150, 0, SIZE_100),
            Ok(pnl(0, SIZE_100))
        );
        assert_eq!(
            position_pnl(Side::Long, 0, P150, SIZE_100),
            Err(MathError::DivisionByZero)
        );
        assert_eq!(
            position_pnl(Side::Short, 1, u64::MAX, u64::MAX),
            Err(MathError::Overflow)
        );
    }

    #[test]
    fn entry_and_exit_prices_round_against_trader() {
        let p = OraclePrice::new(1_234_567_891_234, -12);
        assert_eq!(entry_price_9dp(Side::Long, &p), Ok(1_234_567_892));
        assert_eq!(exit_price_9dp(Side::Long, &p), Ok(1_234_567_891));
        assert_eq!(entry_price_9dp(Side::Short, &p), Ok(1_234_567_891));
        assert_eq!(exit_price_9dp(Side::Short, &p), Ok(1_234_567_892));
        // Opening and closing at the same oracle price never shows a profit.
        for side in [Side::Long, Side::Short] {
            let entry = entry_price_9dp(side, &p).unwrap();
            let exit = exit_price_9dp(side, &p).unwrap();
            assert_eq!(
                position_pnl(side, entry, exit, SIZE_100)
                    .unwrap()
                    .profit_usd,
                0
            );
        }
    }

    /// Profit ≤ exact ≤ loss-rounded, and long/short at the same prices are exact mirrors up to
    /// one unit of rounding (never both profitable).
    #[test]
    fn property_rounding_direction() {
        let prices: Vec<u64> = SAMPLE_U64S
            .iter()
            .copied()
            .chain(pseudo_random_u64s(30, 17))
            .filter(|&p| p != 0)
            .collect();
        let sizes: Vec<u64> = pseudo_random_u64s(12, 23).chain([0, 1, SIZE_100]).collect();
        for &entry in &prices {
            for &exit in prices.iter().step_by(2) {
                for &size in &sizes {
                    let exact_num = u128::from(size) * u128::from(entry.abs_diff(exit));
                    let e = u128::from(entry);
                    for side in [Side::Long, Side::Short] {
                        let Ok(r) = position_pnl(side, entry, exit, size) else {
                            continue;
                        };
                        assert!(r.profit_usd == 0 || r.loss_usd == 0);
                        assert!(u128::from(r.profit_usd) * e <= exact_num);
                        assert!(r.loss_usd == 0 || u128::from(r.loss_usd) * e >= exact_num);
                    }
                    if let (Ok(l), Ok(s)) = (
                        position_pnl(Side::Long, entry, exit, size),
                        position_pnl(Side::Short, entry, exit, size),
                    ) {
                        assert!(l.profit_usd == 0 || s.profit_usd == 0);
                        assert!(l.profit_usd.abs_diff(s.loss_usd) <= 1);
                        assert!(s.profit_usd.abs_diff(l.loss_usd) <= 1);
                    }
                }
            }
        }
    }
}
