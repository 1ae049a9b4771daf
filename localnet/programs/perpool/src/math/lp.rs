//! LP token pricing: minting against and redeeming from the pool's assets under management.
//!
//! The LP token has [`LP_DECIMALS`] = 6, so at the first deposit one LP is worth $1 and the
//! amount minted equals the deposit's USD value, less [`LOCKED_LP_SUPPLY`]. Afterwards the
//! price is `aum / (supply + LOCKED_LP_SUPPLY)`.
//!
//! Locked supply: the first deposit pays for [`LOCKED_LP_SUPPLY`] units (one LP, $1) that are
//! never minted to anyone but count in every price, like shares sent to a dead address. The
//! supply that prices the LP token therefore never falls below one LP, whatever the only LP
//! of a pool withdraws or burns: to make one LP unit worth `x`, an attacker must give the pool
//! `x × LOCKED_LP_SUPPLY`, while the next depositor's rounding can lose it at most `x`.
//! Without it, a lone LP could shrink the supply to one unit, inflate that unit with a
//! donation or trading fees, and take up to one unit's worth of every later deposit.
//!
//! Pool-favourable valuation (DESIGN §4 "AUM valued high on mint, low on burn"):
//! - **Mint**: value the deposited tokens LOW ([`Valuation::Low`]) and the AUM HIGH
//!   ([`Valuation::High`]); mint `lp_to_mint` (floor).
//! - **Burn**: value the AUM LOW; `usd_for_lp` (floor); pay tokens with `usd_to_token_floor` at
//!   the HIGH price.
//!
//! AUM must come from the program's own accounting (owned amounts, fees, open PnL), never from
//! vault token balances, so a donation cannot move the LP price.

use super::checked::{mul_div_floor_u64, to_u64};
use super::{
    token_to_usd_ceil, token_to_usd_floor, MathError, MathResult, OraclePrice, LP_DECIMALS, USD_ONE,
};

/// Which side of the spot/EMA pair to use and which way to round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Valuation {
    /// `max(spot, ema)`, rounded up: AUM when minting LP, anything the user owes.
    High,
    /// `min(spot, ema)`, rounded down: AUM when burning LP, anything credited to the user.
    Low,
    /// Spot price, rounded down: reported values (cached AUM, views).
    Spot,
}

/// USD value of `amount` base units of one custody, valued high or low (see [`Valuation`]).
/// Pass `ema = spot` when a custody has no EMA.
pub fn custody_value_usd(
    amount: u64,
    decimals: u8,
    spot: &OraclePrice,
    ema: &OraclePrice,
    valuation: Valuation,
) -> MathResult<u64> {
    match valuation {
        Valuation::High => token_to_usd_ceil(amount, decimals, &spot.max_value(*ema)),
        Valuation::Spot => token_to_usd_floor(amount, decimals, spot),
        Valuation::Low => token_to_usd_floor(amount, decimals, &spot.min_value(*ema)),
    }
}

/// LP units the first deposit pays for and nobody holds (one LP, worth $1 then); see the
/// module documentation.
pub const LOCKED_LP_SUPPLY: u64 = 1_000_000;

/// The supply that prices the LP token: the minted supply plus [`LOCKED_LP_SUPPLY`] once
/// anything is minted.
pub fn pricing_supply(lp_supply: u64) -> MathResult<u64> {
    if lp_supply == 0 {
        return Ok(0);
    }
    lp_supply.checked_add(LOCKED_LP_SUPPLY).ok_or(MathError::Overflow)
}

/// LP tokens to mint for a deposit worth `deposit_usd`.
/// - First deposit (`lp_supply == 0`): `deposit_usd − LOCKED_LP_SUPPLY` (1 LP = $1, the locked
///   units paid for; 0 when the deposit is not worth more than them; any AUM already present
///   accrues to this first depositor, harming no existing LP).
/// - Otherwise `floor(deposit × (supply + LOCKED_LP_SUPPLY) / aum)`.
///
/// `InvalidInput` if `aum_usd == 0` while LP tokens exist (the pool is wiped out; minting at
/// an infinite rate would dilute nobody but the math is undefined). Callers should reject a
/// zero result (a dust deposit that would be absorbed by the pool).
pub fn lp_to_mint(deposit_usd: u64, aum_usd: u64, lp_supply: u64) -> MathResult<u64> {
    if lp_supply == 0 {
        return Ok(deposit_usd.saturating_sub(LOCKED_LP_SUPPLY));
    }
    if aum_usd == 0 {
        return Err(MathError::InvalidInput);
    }
    mul_div_floor_u64(deposit_usd, pricing_supply(lp_supply)?, aum_usd)
}

/// LP tokens for a deposit worth `deposit_usd` after an LP fee worth `fee_usd` that stays in
/// the pool (DESIGN §4: the fee is paid to the other LPs): minted against the pool *including*
/// the fee, `floor(deposit × (supply + locked) / (aum + fee))`, so the new tokens are worth at
/// most the deposit net of the fee and the whole fee accrues to the tokens that already exist.
/// Minting against `aum` alone would hand the depositor its own share of the fee back (most of
/// it when the deposit dwarfs the pool). The first deposit: see [`lp_to_mint`].
pub fn lp_to_mint_after_fee(deposit_usd: u64, fee_usd: u64, aum_usd: u64, lp_supply: u64) -> MathResult<u64> {
    if lp_supply == 0 {
        return lp_to_mint(deposit_usd, aum_usd, 0);
    }
    if aum_usd == 0 {
        return Err(MathError::InvalidInput);
    }
    let priced_against = aum_usd.checked_add(fee_usd).ok_or(MathError::Overflow)?;
    lp_to_mint(deposit_usd, priced_against, lp_supply)
}

/// USD owed for burning `lp_amount`: `floor(lp × aum / (supply + LOCKED_LP_SUPPLY))`, or the
/// whole `aum` when it burns the whole minted supply: the last LP out takes the locked LP's
/// share too, since nobody else holds a claim on it (and the pool can then be emptied).
/// `InvalidInput` if `lp_amount > lp_supply`, if nothing is minted, or if `aum_usd == 0` while
/// LP tokens exist (same guard as [`lp_to_mint`]).
pub fn usd_for_lp(lp_amount: u64, aum_usd: u64, lp_supply: u64) -> MathResult<u64> {
    if lp_supply == 0 || lp_amount > lp_supply || aum_usd == 0 {
        return Err(MathError::InvalidInput);
    }
    mul_div_floor_u64(lp_amount, aum_usd, redeeming_supply(lp_amount, lp_supply)?)
}

/// The supply a burn of `lp_amount` is priced against: [`pricing_supply`], or the minted
/// supply alone when the burn is all of it (see [`usd_for_lp`]).
pub fn redeeming_supply(lp_amount: u64, lp_supply: u64) -> MathResult<u64> {
    if lp_amount == lp_supply {
        return Ok(lp_supply);
    }
    pricing_supply(lp_supply)
}

/// USD value of one whole LP token (10^6 base units), rounded down; $1 before the first mint.
/// For display and view instructions.
pub fn lp_token_price_usd(aum_usd: u64, lp_supply: u64) -> MathResult<u64> {
    if lp_supply == 0 {
        return Ok(USD_ONE);
    }
    let one_lp = super::checked::pow10(u32::from(LP_DECIMALS))?;
    to_u64(super::checked::mul_div_floor(
        one_lp,
        u128::from(aum_usd),
        u128::from(pricing_supply(lp_supply)?),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::test_values::{pseudo_random_u64s, SAMPLE_U64S};

    const USD: u64 = 1_000_000;

    #[test]
    fn first_deposit_is_one_dollar_per_lp_less_the_locked_lp() {
        assert_eq!(lp_to_mint(1_000 * USD, 0, 0), Ok(999 * USD));
        assert_eq!(lp_to_mint(1_000 * USD, 5 * USD, 0), Ok(999 * USD));
        // Not worth more than the locked LP: nothing to mint (the caller refuses it).
        assert_eq!(lp_to_mint(USD, 0, 0), Ok(0));
        assert_eq!(lp_to_mint(USD + 1, 0, 0), Ok(1));
        assert_eq!(lp_token_price_usd(0, 0), Ok(USD));
        // 999 LP minted plus the locked one price a $1000 pool at $1.
        assert_eq!(lp_token_price_usd(1_000 * USD, 999 * USD), Ok(USD));
        assert_eq!(pricing_supply(0), Ok(0));
        assert_eq!(pricing_supply(1), Ok(LOCKED_LP_SUPPLY + 1));
        assert_eq!(pricing_supply(u64::MAX), Err(MathError::Overflow));
    }

    #[test]
    fn later_deposits_and_redemptions() {
        // AUM grew to $1100 for 999 LP (1000 with the locked one): $110 → 100 LP → $110.
        assert_eq!(lp_to_mint(110 * USD, 1_100 * USD, 999 * USD), Ok(100 * USD));
        assert_eq!(usd_for_lp(100 * USD, 1_100 * USD, 999 * USD), Ok(110 * USD));
        assert_eq!(lp_token_price_usd(1_100 * USD, 999 * USD), Ok(1_100_000));
        // Rounds down: 1 unit into $3.000001 priced by 3 LP → 0 (caller rejects dust).
        assert_eq!(lp_to_mint(1, 3 * USD + 1, 2 * USD), Ok(0));
        assert_eq!(usd_for_lp(1, 2, 3), Ok(0));
        // Burning all but one unit leaves the locked LP's share in the pool; the last LP out
        // (burning every minted unit) takes it too.
        assert_eq!(usd_for_lp(999 * USD - 1, 1_000 * USD, 999 * USD), Ok(999 * USD - 1));
        assert_eq!(usd_for_lp(999 * USD, 1_000 * USD, 999 * USD), Ok(1_000 * USD));
    }

    #[test]
    fn a_lone_lp_cannot_shrink_the_pricing_supply_below_one_lp() {
        // The only LP of a $27,182 pool keeps one unit (burns or withdraws the rest). Without
        // the locked LP that unit is worth the whole pool, and a deposit just under two units'
        // worth mints one and loses up to $27,182; with it, one unit is worth $0.027 and a
        // $54,364 deposit mints 2,000,002 units.
        let aum = 27_182 * USD;
        assert_eq!(lp_to_mint(54_364 * USD, aum, 1), Ok(2_000_002));
        // A deposit worth just under two $0.027 units mints one.
        assert_eq!(lp_to_mint(54_000, aum, 1), Ok(1));
        // Once another LP holds tokens, the lone unit redeems for $0.027 (27,181 units).
        assert_eq!(usd_for_lp(1, aum, 2), Ok(27_181));
        // Without the locked LP, one unit would be the whole pool.
        assert_eq!(mul_div_floor_u64(1, aum, 1), Ok(aum));
    }

    #[test]
    fn the_lp_fee_goes_to_the_lps_already_there() {
        // A $1000 pool of 1000 LP (999 minted) takes a $10,000 deposit paying a $50 fee: minted
        // against $1050, the 9476.19 LP are worth 9476.19 / 10476.19 × $11,000 = $9950 and
        // the first LP's 1000 are worth $1050: the whole fee is theirs.
        let minted = lp_to_mint_after_fee(9_950 * USD, 50 * USD, 1_000 * USD, 999 * USD).unwrap();
        assert_eq!(minted, 9_476_190_476);
        // Against $1000 alone the depositor would get 9950 LP, worth $9995.43: $45.43 of its
        // own fee back.
        assert_eq!(lp_to_mint(9_950 * USD, 1_000 * USD, 999 * USD), Ok(9_950 * USD));
        assert_eq!(lp_to_mint_after_fee(7 * USD, 3, 0, 0), Ok(6 * USD));
        assert_eq!(lp_to_mint_after_fee(7, 0, 2 * USD, 2 * USD - LOCKED_LP_SUPPLY), Ok(7));
        assert_eq!(lp_to_mint_after_fee(7, 1, 0, 10), Err(MathError::InvalidInput));
        assert_eq!(lp_to_mint_after_fee(7, u64::MAX, 1, 10), Err(MathError::Overflow));
    }

    /// The new tokens are never worth more than the deposit net of the fee in the pool that
    /// keeps the fee, and the existing tokens never lose value.
    #[test]
    fn property_fee_accrues_to_existing_lps() {
        let values: Vec<u64> = pseudo_random_u64s(40, 29).map(|v| v % (1u64 << 50) + 1).collect();
        for w in values.windows(4) {
            let (aum, supply, deposit, fee) = (w[0], w[1], w[2], w[3] % (w[2] + 1));
            let Ok(minted) = lp_to_mint_after_fee(deposit, fee, aum, supply) else {
                continue; // more LP than a u64 holds
            };
            let priced = u128::from(pricing_supply(supply).unwrap());
            let (aum2, supply2) = (u128::from(aum) + u128::from(deposit) + u128::from(fee), priced + u128::from(minted));
            assert!(u128::from(minted) * aum2 <= u128::from(deposit) * supply2, "{aum} {supply} {deposit} {fee}");
            assert!(aum2 * priced >= (u128::from(aum) + u128::from(fee)) * supply2);
        }
    }

    #[test]
    fn guards() {
        assert_eq!(lp_to_mint(USD, 0, 5), Err(MathError::InvalidInput));
        assert_eq!(usd_for_lp(1, 0, 5), Err(MathError::InvalidInput));
        assert_eq!(usd_for_lp(6, 10, 5), Err(MathError::InvalidInput));
        assert_eq!(usd_for_lp(0, 10, 0), Err(MathError::InvalidInput));
        assert_eq!(lp_to_mint(u64::MAX, 1, u64::MAX), Err(MathError::Overflow));
    }

    #[test]
    fn custody_valuation_high_and_low() {
        let spot = OraclePrice::new(15_025, -2);
        let ema = OraclePrice::new(150_000_000_001, -9);
        // 1 lamport: low = floor at $150.000000001 → 0; high = ceil at $150.25 → 1.
        assert_eq!(custody_value_usd(1, 9, &spot, &ema, Valuation::Low), Ok(0));
        assert_eq!(custody_value_usd(1, 9, &spot, &ema, Valuation::High), Ok(1));
        assert_eq!(
            custody_value_usd(2_000_000_000, 9, &spot, &ema, Valuation::Low),
            Ok(300_000_000)
        );
        assert_eq!(
            custody_value_usd(2_000_000_000, 9, &spot, &ema, Valuation::High),
            Ok(300_500_000)
        );
    }

    /// LP round trip at constant AUM never gains: deposit → mint → burn returns ≤ the deposit,
    /// and the LP price never falls for the remaining holders.
    #[test]
    fn property_round_trip_never_gains() {
        let values: Vec<u64> = SAMPLE_U64S
            .iter()
            .copied()
            .chain(pseudo_random_u64s(40, 13))
            .map(|v| v % (1u64 << 60))
            .collect();
        for &aum in values.iter().filter(|&&v| v > 0) {
            for &supply in values.iter().filter(|&&v| v > 0).step_by(2) {
                for &deposit in values.iter().step_by(3) {
                    let Ok(minted) = lp_to_mint(deposit, aum, supply) else {
                        continue;
                    };
                    let (Some(aum2), Some(supply2)) =
                        (aum.checked_add(deposit), supply.checked_add(minted))
                    else {
                        continue;
                    };
                    let back = usd_for_lp(minted, aum2, supply2).unwrap();
                    assert!(
                        back <= deposit,
                        "round trip gained {deposit} -> {minted} -> {back}"
                    );
                    // LP price for existing holders does not fall: aum2/supply2 >= aum/supply
                    // (both priced with the locked LP).
                    let (Ok(priced), Ok(priced2)) = (pricing_supply(supply), pricing_supply(supply2)) else {
                        continue;
                    };
                    assert!(u128::from(aum2) * u128::from(priced) >= u128::from(aum) * u128::from(priced2));
                }
            }
        }
    }
}
