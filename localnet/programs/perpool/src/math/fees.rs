//! Trading and token fees. Fees always round UP: a trader can never avoid a fee by making
//! trades small enough that the fee rounds to zero, and splitting a trade never pays less
//! than the unsplit trade.

use super::checked::mul_div_ceil_u64;
use super::{MathError, MathResult, BPS_DENOMINATOR};

/// `ceil(size_usd × fee_bps / 10_000)`. Used for open/close/swap fees on a USD size.
pub fn fee_usd(size_usd: u64, fee_bps: u64) -> MathResult<u64> {
    mul_div_ceil_u64(size_usd, fee_bps, BPS_DENOMINATOR)
}

/// `ceil(amount × fee_bps / 10_000)` in token base units (e.g. an LP deposit/withdraw fee taken
/// from the tokens themselves).
pub fn fee_tokens(amount: u64, fee_bps: u64) -> MathResult<u64> {
    mul_div_ceil_u64(amount, fee_bps, BPS_DENOMINATOR)
}

/// DESIGN §4 trading fee: `max(min_fee_usd, ceil(size × fee_bps / 10_000))`.
pub fn fee_usd_with_minimum(size_usd: u64, fee_bps: u64, min_fee_usd: u64) -> MathResult<u64> {
    Ok(fee_usd(size_usd, fee_bps)?.max(min_fee_usd))
}

/// A fee divided between the LPs (stays in the pool) and the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    pub lp_share: u64,
    pub protocol_share: u64,
}

/// Split `fee` so that `protocol_share = floor(fee × protocol_share_bps / 10_000)` and the LPs
/// get the remainder: the two parts always sum to `fee` exactly (no unit created or lost), and
/// the rounding unit stays in the pool. `InvalidInput` if the share exceeds 100%.
pub fn split_fee(fee: u64, protocol_share_bps: u64) -> MathResult<FeeSplit> {
    if protocol_share_bps > BPS_DENOMINATOR {
        return Err(MathError::InvalidInput);
    }
    let protocol_share =
        super::checked::mul_div_floor_u64(fee, protocol_share_bps, BPS_DENOMINATOR)?;
    let lp_share = fee.checked_sub(protocol_share).ok_or(MathError::Overflow)?;
    Ok(FeeSplit {
        lp_share,
        protocol_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::{pseudo_random_u64s, SAMPLE_U64S};

    #[test]
    fn fee_examples() {
        // 10 bps on $1000 = $1.
        assert_eq!(fee_usd(1_000_000_000, 10), Ok(1_000_000));
        // 10 bps on 1 unit is 0.001 unit → 1 (never zero for a non-zero fee).
        assert_eq!(fee_usd(1, 10), Ok(1));
        assert_eq!(fee_usd(0, 10), Ok(0));
        assert_eq!(fee_usd(1_000, 0), Ok(0));
        assert_eq!(fee_tokens(333, 30), Ok(1));
        assert_eq!(fee_tokens(10_000, 30), Ok(30));
        assert_eq!(fee_usd(u64::MAX, 20_000), Err(MathError::Overflow));
        assert_eq!(fee_usd_with_minimum(1_000_000, 10, 5_000), Ok(5_000));
        assert_eq!(
            fee_usd_with_minimum(1_000_000_000, 10, 5_000),
            Ok(1_000_000)
        );
    }

    #[test]
    fn split_fee_sums_exactly() {
        assert_eq!(
            split_fee(101, 5_000),
            Ok(FeeSplit {
                lp_share: 51,
                protocol_share: 50
            })
        );
        assert_eq!(
            split_fee(101, 10_000),
            Ok(FeeSplit {
                lp_share: 0,
                protocol_share: 101
            })
        );
        assert_eq!(
            split_fee(101, 0),
            Ok(FeeSplit {
                lp_share: 101,
                protocol_share: 0
            })
        );
        assert_eq!(split_fee(101, 10_001), Err(MathError::InvalidInput));
        for fee in SAMPLE_U64S {
            let s = split_fee(fee, 2_500).unwrap();
            assert_eq!(s.lp_share + s.protocol_share, fee);
        }
    }

    /// The fee is never below the exact rational value and exceeds it by less than one unit;
    /// splitting a size in two never pays less in total.
    #[test]
    fn property_fee_never_under_exact() {
        let sizes: Vec<u64> = SAMPLE_U64S
            .iter()
            .copied()
            .chain(pseudo_random_u64s(100, 3))
            .collect();
        for &size in &sizes {
            for bps in [0u64, 1, 3, 6, 10, 25, 70, 100, 9_999, 10_000] {
                let fee = fee_usd(size, bps).unwrap();
                let exact_num = u128::from(size) * u128::from(bps);
                let fee_scaled = u128::from(fee) * 10_000;
                assert!(fee_scaled >= exact_num, "fee below exact: {size} {bps}");
                assert!(
                    fee_scaled < exact_num + 10_000,
                    "fee more than one unit over"
                );
                let half = size / 2;
                let split_total = u128::from(fee_usd(half, bps).unwrap())
                    + u128::from(fee_usd(size - half, bps).unwrap());
                assert!(split_total >= u128::from(fee));
            }
        }
    }
}
