use anchor_lang::prelude::*;

/// A price posted by the oracle authority (PDA seeds: `["oracle", pool, mint]`).
#[account]
#[derive(InitSpace, Debug, Default)]
pub struct CustomOracle {
    pub price: u64,
    pub expo: i32,
    pub conf: u64,
    pub ema: u64,
    pub publish_time: i64,
    pub bump: u8,
}

impl CustomOracle {
    pub const SEED: &'static [u8] = b"oracle";
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, PartialEq, Eq)]
pub enum OracleType {
    /// `CustomOracle` account of this program.
    Custom,
    /// Pyth pull oracle `PriceUpdateV2` account (owner and feed id checked).
    Pyth,
}

/// How a custody reads and validates its price.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug)]
pub struct OracleParams {
    pub oracle_type: OracleType,
    pub oracle_account: Pubkey,
    /// Pyth feed id (ignored for custom oracles).
    pub feed_id: [u8; 32],
    /// Largest accepted confidence / price, in bps.
    pub max_price_error_bps: u64,
    /// Largest accepted age of a price, in seconds.
    pub max_price_age_sec: u32,
}

use crate::{error::PerpoolError, math::OraclePrice};

/// Pyth pull-oracle receiver program, owner of `PriceUpdateV2` accounts.
pub const PYTH_RECEIVER_PROGRAM: Pubkey = pubkey!("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ");
/// Exponents outside this range cannot be valued without overflow.
pub const MAX_ABS_EXPONENT: i32 = 18;
/// Whether a price exponent can be valued (`i32::MIN` has no absolute value, so no `abs()`).
pub fn exponent_in_range(expo: i32) -> bool {
    (-MAX_ABS_EXPONENT..=MAX_ABS_EXPONENT).contains(&expo)
}

/// Longest accepted price age (a day); custodies choose stricter limits.
pub const MAX_PRICE_AGE_LIMIT: u32 = 86_400;

/// A validated price: spot and EMA with the same exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prices {
    pub spot: OraclePrice,
    pub ema: OraclePrice,
}

impl Prices {
    /// The higher of spot and EMA: used where a higher price favours the pool.
    pub fn max(&self) -> OraclePrice {
        if self.ema.price > self.spot.price { self.ema } else { self.spot }
    }

    /// The lower of spot and EMA.
    pub fn min(&self) -> OraclePrice {
        if self.ema.price < self.spot.price { self.ema } else { self.spot }
    }
}

/// Raw fields common to both oracle formats.
struct RawPrice {
    price: i64,
    conf: u64,
    expo: i32,
    ema: i64,
    publish_time: i64,
}

impl OracleParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.max_price_error_bps > 0 && self.max_price_error_bps <= 10_000,
            PerpoolError::InvalidOracleConfig
        );
        require!(
            self.max_price_age_sec > 0 && self.max_price_age_sec <= MAX_PRICE_AGE_LIMIT,
            PerpoolError::InvalidOracleConfig
        );
        Ok(())
    }

    /// Reads and validates the price in `account`: the configured account, price > 0,
    /// confidence within bounds and not older than the maximum age at `now`.
    pub fn read(&self, account: &AccountInfo, now: i64) -> Result<Prices> {
        require_keys_eq!(*account.key, self.oracle_account, PerpoolError::InvalidOracleAccount);
        let raw = match self.oracle_type {
            OracleType::Custom => read_custom(account)?,
            OracleType::Pyth => read_pyth(account, &self.feed_id)?,
        };
        require!(raw.price > 0 && raw.ema > 0, PerpoolError::InvalidOraclePrice);
        require!(exponent_in_range(raw.expo), PerpoolError::InvalidOraclePrice);
        require!(raw.publish_time <= now, PerpoolError::InvalidPublishTime);
        let age = now.checked_sub(raw.publish_time).ok_or(PerpoolError::MathOverflow)?;
        require!(age <= i64::from(self.max_price_age_sec), PerpoolError::StaleOraclePrice);
        let spot = u64::try_from(raw.price).map_err(|_| PerpoolError::InvalidOraclePrice)?;
        let ema = u64::try_from(raw.ema).map_err(|_| PerpoolError::InvalidOraclePrice)?;
        require!(
            crate::math::price_within_confidence(spot, raw.conf, self.max_price_error_bps),
            PerpoolError::OracleConfidenceTooWide
        );
        Ok(Prices {
            spot: OraclePrice { price: spot, exponent: raw.expo },
            ema: OraclePrice { price: ema, exponent: raw.expo },
        })
    }
}

fn read_custom(account: &AccountInfo) -> Result<RawPrice> {
    require_keys_eq!(*account.owner, crate::ID, PerpoolError::InvalidOracleAccount);
    let data = account.try_borrow_data()?;
    let oracle = CustomOracle::try_deserialize(&mut &data[..]).map_err(|_| PerpoolError::InvalidOracleAccount)?;
    Ok(RawPrice {
        price: i64::try_from(oracle.price).map_err(|_| PerpoolError::InvalidOraclePrice)?,
        conf: oracle.conf,
        expo: oracle.expo,
        ema: i64::try_from(oracle.ema).map_err(|_| PerpoolError::InvalidOraclePrice)?,
        publish_time: oracle.publish_time,
    })
}

/// Parses a Pyth `PriceUpdateV2` account (Anchor layout of the receiver program):
/// discriminator, write authority, verification level, price feed message, posted slot.
fn read_pyth(account: &AccountInfo, feed_id: &[u8; 32]) -> Result<RawPrice> {
    require_keys_eq!(*account.owner, PYTH_RECEIVER_PROGRAM, PerpoolError::InvalidOracleAccount);
    let data = account.try_borrow_data()?;
    let discriminator = anchor_lang::solana_program::hash::hash(b"account:PriceUpdateV2").to_bytes();
    require!(data.len() >= 8 && data[..8] == discriminator[..8], PerpoolError::InvalidOracleAccount);
    let mut offset = 8 + 32;
    let level = *data.get(offset).ok_or(PerpoolError::InvalidOracleAccount)?;
    // Partial { num_signatures: u8 } = 0, Full = 1: only fully verified updates are used.
    require!(level == 1, PerpoolError::UnverifiedPythPrice);
    offset += 1;
    let field = |start: usize, len: usize| -> Result<&[u8]> {
        data.get(start..start + len).ok_or_else(|| error!(PerpoolError::InvalidOracleAccount))
    };
    let feed = field(offset, 32)?;
    require!(feed == feed_id.as_slice(), PerpoolError::WrongPythFeed);
    offset += 32;
    let i64_at = |at: usize| -> Result<i64> { Ok(i64::from_le_bytes(field(at, 8)?.try_into().unwrap())) };
    let price = i64_at(offset)?;
    let conf = u64::from_le_bytes(field(offset + 8, 8)?.try_into().unwrap());
    let expo = i32::from_le_bytes(field(offset + 16, 4)?.try_into().unwrap());
    let publish_time = i64_at(offset + 20)?;
    let ema = i64_at(offset + 36)?;
    Ok(RawPrice { price, conf, expo, ema, publish_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponent_range_has_no_overflow_at_the_extremes() {
        assert!(exponent_in_range(0));
        assert!(exponent_in_range(MAX_ABS_EXPONENT));
        assert!(exponent_in_range(-MAX_ABS_EXPONENT));
        assert!(!exponent_in_range(MAX_ABS_EXPONENT + 1));
        assert!(!exponent_in_range(-MAX_ABS_EXPONENT - 1));
        assert!(!exponent_in_range(i32::MIN));
        assert!(!exponent_in_range(i32::MAX));
    }
}
