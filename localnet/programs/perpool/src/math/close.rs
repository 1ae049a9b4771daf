//! Settlement of a (full or partial) close, and the proportional split for partial closes.
//!
//! `payout = max(0, collateral + profit − loss − fees)` and
//! `bad_debt = max(0, loss + fees − collateral − profit)`; exactly one of them can be non-zero.
//! Profit is already floored and loss ceiled by [`position_pnl`], fees ceiled by `fees`, so the
//! payout needs no further rounding. Convert `payout_usd` to tokens with `usd_to_token_floor`.

use super::checked::{mul_div_ceil_u64, mul_div_floor_u64};
use super::{position_pnl, MathError, MathResult, Side, BPS_DENOMINATOR};

/// What closing (a slice of) a position settles to, all in USD units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseAmounts {
    /// Owed to the trader: `max(0, collateral + profit − loss − fees)`.
    pub payout_usd: u64,
    pub profit_usd: u64,
    pub loss_usd: u64,
    /// Total fees charged at settlement (close fee + borrow fee + any unpaid fee), as passed in.
    pub fee_usd: u64,
    /// Shortfall the pool absorbs: `max(0, loss + fees − collateral − profit)`.
    pub bad_debt_usd: u64,
}

/// Settle `size_usd` opened at `entry_price_9dp` and closed at `exit_price_9dp` (use
/// `exit_price_9dp(side, ..)` to get the pool-favourable exit price) with `collateral_usd`
/// backing it and `fees_usd` owed.
pub fn close_amounts(
    side: Side,
    size_usd: u64,
    collateral_usd: u64,
    entry_price_9dp: u64,
    exit_price_9dp: u64,
    fees_usd: u64,
) -> MathResult<CloseAmounts> {
    let pnl = position_pnl(side, entry_price_9dp, exit_price_9dp, size_usd)?;
    let credit = i128::from(collateral_usd) + i128::from(pnl.profit_usd);
    let debit = i128::from(pnl.loss_usd) + i128::from(fees_usd);
    let net = credit - debit;
    // |net| <= 2 × u64::MAX; a payout beyond u64 (huge collateral + profit) is an overflow.
    let (payout_usd, bad_debt_usd) = if net >= 0 {
        (u64::try_from(net).map_err(|_| MathError::Overflow)?, 0)
    } else {
        (0, u64::try_from(-net).map_err(|_| MathError::Overflow)?)
    };
    Ok(CloseAmounts {
        payout_usd,
        profit_usd: pnl.profit_usd,
        loss_usd: pnl.loss_usd,
        fee_usd: fees_usd,
        bad_debt_usd,
    })
}

/// An amount divided between the closed slice and what stays in the position;
/// `closed + remaining` always equals the original exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpsSplit {
    pub closed: u64,
    pub remaining: u64,
}

/// `closed = floor(amount × close_bps / 10_000)`. Use for what the trader *takes out*
/// (collateral released, in USD or tokens) and for the size closed: the rounding unit stays in
/// the position, keeping its margin (and its size-proportional borrow fee / maintenance
/// threshold) on the pool's side. `InvalidInput` if `close_bps > 10_000`.
pub fn split_bps_floor(amount: u64, close_bps: u64) -> MathResult<BpsSplit> {
    split(amount, close_bps, false)
}

/// `closed = ceil(amount × close_bps / 10_000)`. Use for amounts the trader *owes* that are
/// settled with the closed slice (an outstanding entry fee): it is collected no later than
/// proportionally. `InvalidInput` if `close_bps > 10_000`.
pub fn split_bps_ceil(amount: u64, close_bps: u64) -> MathResult<BpsSplit> {
    split(amount, close_bps, true)
}

fn split(amount: u64, close_bps: u64, round_up: bool) -> MathResult<BpsSplit> {
    if close_bps > BPS_DENOMINATOR {
        return Err(MathError::InvalidInput);
    }
    let closed = if round_up {
        mul_div_ceil_u64(amount, close_bps, BPS_DENOMINATOR)?
    } else {
        mul_div_floor_u64(amount, close_bps, BPS_DENOMINATOR)?
    };
    // closed <= amount because close_bps <= 10_000.
    let remaining = amount.checked_sub(closed).ok_or(MathError::Overflow)?;
    Ok(BpsSplit { closed, remaining })
}

/// How a partial close of `close_bps` divides a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialClose {
    /// Size settled now (floor); `size.remaining` stays open.
    pub size: BpsSplit,
    /// Collateral released with the closed slice (floor).
    pub collateral: BpsSplit,
    /// Outstanding entry fee charged with the closed slice (ceil).
    pub entry_fee: BpsSplit,
}

/// Divide a position for a partial close of `close_bps` (10_000 = full close, which returns
/// everything as closed). Size and collateral round the closed part DOWN, the entry fee rounds
/// the charged part UP (see [`split_bps_floor`] / [`split_bps_ceil`]). Then settle the closed slice with
/// [`close_amounts`] using `size.closed`, `collateral.closed` and `entry_fee.closed` + other fees.
///
/// `InvalidInput` if `close_bps` is 0 or above 10_000, or if the closed size rounds to zero
/// (that would release collateral without closing anything — a leverage-check bypass).
/// Callers should also refuse partial closes of a liquidatable position: a slice with bad debt
/// must not be settled while the remainder keeps collateral.
pub fn partial_close(
    size_usd: u64,
    collateral_usd: u64,
    entry_fee_usd: u64,
    close_bps: u64,
) -> MathResult<PartialClose> {
    if close_bps == 0 {
        return Err(MathError::InvalidInput);
    }
    let size = split_bps_floor(size_usd, close_bps)?;
    if size.closed == 0 {
        return Err(MathError::InvalidInput);
    }
    Ok(PartialClose {
        size,
        collateral: split_bps_floor(collateral_usd, close_bps)?,
        entry_fee: split_bps_ceil(entry_fee_usd, close_bps)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::pseudo_random_u64s;
    use crate::math::{
        entry_price_9dp, exit_price_9dp, token_to_usd_floor, usd_to_token_floor, OraclePrice,
    };

    const USD: u64 = 1_000_000;
    const P150: u64 = 150_000_000_000;

    fn settle(side: Side, exit: u64) -> CloseAmounts {
        close_amounts(side, 100 * USD, 50 * USD, P150, exit, 0).unwrap()
    }

    /// Issue 3 seed: 2x, size $100, collateral $50, no fees.
    #[test]
    fn seed_two_x_long_and_short() {
        assert_eq!(settle(Side::Long, 180_000_000_000).payout_usd, 70 * USD); // +20%
        assert_eq!(settle(Side::Long, 120_000_000_000).payout_usd, 30 * USD); // −20%
        assert_eq!(settle(Side::Short, 120_000_000_000).payout_usd, 70 * USD); // −20%
        assert_eq!(settle(Side::Short, 180_000_000_000).payout_usd, 30 * USD); // +20%
        let up = settle(Side::Long, 180_000_000_000);
        assert_eq!(
            (up.profit_usd, up.loss_usd, up.fee_usd, up.bad_debt_usd),
            (20 * USD, 0, 0, 0)
        );
    }

    /// The same seed through oracle prices and SOL tokens: $50 of SOL at $100 (0.5 SOL),
    /// +20% → $70 of SOL at $120; −20% → $30 of SOL at $80.
    #[test]
    fn seed_long_in_sol_tokens() {
        let sol_decimals = 9;
        let open = OraclePrice::new(10_000_000_000, -8);
        let collateral_usd = token_to_usd_floor(500_000_000, sol_decimals, &open).unwrap();
        assert_eq!(collateral_usd, 50 * USD);
        let entry = entry_price_9dp(Side::Long, &open).unwrap();
        for (exit_price, expected_usd, expected_lamports) in [
            (
                OraclePrice::new(12_000_000_000, -8),
                70 * USD,
                583_333_333u64,
            ), // 70/120 SOL, floor
            (OraclePrice::new(8_000_000_000, -8), 30 * USD, 375_000_000), // 30/80 SOL
        ] {
            let exit = exit_price_9dp(Side::Long, &exit_price).unwrap();
            let c = close_amounts(Side::Long, 100 * USD, collateral_usd, entry, exit, 0).unwrap();
            assert_eq!(c.payout_usd, expected_usd);
            assert_eq!(
                usd_to_token_floor(c.payout_usd, sol_decimals, &exit_price),
                Ok(expected_lamports)
            );
        }
    }

    #[test]
    fn fees_and_bad_debt() {
        // −20% with $5 fees → $25.
        let c = close_amounts(
            Side::Long,
            100 * USD,
            50 * USD,
            P150,
            120_000_000_000,
            5 * USD,
        )
        .unwrap();
        assert_eq!(
            (c.payout_usd, c.bad_debt_usd, c.fee_usd),
            (25 * USD, 0, 5 * USD)
        );
        // −60% on 2x: loss $60 > collateral $50 → bad debt $10 (+ $5 fees = $15).
        let c = close_amounts(
            Side::Long,
            100 * USD,
            50 * USD,
            P150,
            60_000_000_000,
            5 * USD,
        )
        .unwrap();
        assert_eq!(
            (c.payout_usd, c.loss_usd, c.bad_debt_usd),
            (0, 60 * USD, 15 * USD)
        );
        // Exactly zero equity.
        let c = close_amounts(Side::Long, 100 * USD, 50 * USD, P150, 75_000_000_000, 0).unwrap();
        assert_eq!((c.payout_usd, c.bad_debt_usd), (0, 0));
        assert_eq!(
            close_amounts(Side::Long, 1, u64::MAX, 1, 3, 0),
            Err(MathError::Overflow)
        );
    }

    #[test]
    fn partial_close_splits() {
        let pc = partial_close(100 * USD + 1, 50 * USD + 1, 3, 5_000).unwrap();
        assert_eq!(
            pc.size,
            BpsSplit {
                closed: 50 * USD,
                remaining: 50 * USD + 1
            }
        );
        assert_eq!(
            pc.collateral,
            BpsSplit {
                closed: 25 * USD,
                remaining: 25 * USD + 1
            }
        );
        assert_eq!(
            pc.entry_fee,
            BpsSplit {
                closed: 2,
                remaining: 1
            }
        );
        let full = partial_close(100 * USD, 50 * USD, 3, 10_000).unwrap();
        assert_eq!(
            (
                full.size.remaining,
                full.collateral.remaining,
                full.entry_fee.remaining
            ),
            (0, 0, 0)
        );
        assert_eq!(partial_close(100, 50, 0, 0), Err(MathError::InvalidInput));
        assert_eq!(
            partial_close(100, 50, 0, 10_001),
            Err(MathError::InvalidInput)
        );
        assert_eq!(partial_close(1, 50, 0, 9_999), Err(MathError::InvalidInput)); // closes 0 size
                                                                                  // Half-closing the seed long at +20% pays half of $70.
        let pc = partial_close(100 * USD, 50 * USD, 0, 5_000).unwrap();
        let c = close_amounts(
            Side::Long,
            pc.size.closed,
            pc.collateral.closed,
            P150,
            180_000_000_000,
            0,
        )
        .unwrap();
        assert_eq!(c.payout_usd, 35 * USD);
    }

    /// Payout/bad-debt identity, and closing in two slices never pays more than one close.
    #[test]
    fn property_settlement_identity_and_no_split_gain() {
        let values: Vec<u64> = pseudo_random_u64s(60, 99)
            .map(|v| v % (1u64 << 50))
            .collect();
        let exits = [
            1u64,
            75_000_000_000,
            149_999_999_999,
            P150,
            150_000_000_001,
            333_333_333_333,
        ];
        for w in values.windows(3) {
            let (size, collateral, fees) = (w[0] + 1, w[1], w[2] % (w[0] + 1));
            for side in [Side::Long, Side::Short] {
                for &exit in &exits {
                    let c = close_amounts(side, size, collateral, P150, exit, fees).unwrap();
                    let lhs = i128::from(c.payout_usd) - i128::from(c.bad_debt_usd);
                    let rhs = i128::from(collateral) + i128::from(c.profit_usd)
                        - i128::from(c.loss_usd)
                        - i128::from(fees);
                    assert_eq!(lhs, rhs);
                    assert!(c.payout_usd == 0 || c.bad_debt_usd == 0);
                    for bps in [1u64, 3_333, 5_000, 9_999] {
                        let Ok(pc) = partial_close(size, collateral, fees, bps) else {
                            continue;
                        };
                        let a = close_amounts(
                            side,
                            pc.size.closed,
                            pc.collateral.closed,
                            P150,
                            exit,
                            pc.entry_fee.closed,
                        )
                        .unwrap();
                        let b = close_amounts(
                            side,
                            pc.size.remaining,
                            pc.collateral.remaining,
                            P150,
                            exit,
                            pc.entry_fee.remaining,
                        )
                        .unwrap();
                        let net_split = i128::from(a.payout_usd) - i128::from(a.bad_debt_usd)
                            + i128::from(b.payout_usd)
                            - i128::from(b.bad_debt_usd);
                        assert!(
                            net_split <= lhs,
                            "split gained: {size} {collateral} {fees} {bps}"
                        );
                    }
                }
            }
        }
    }
}
