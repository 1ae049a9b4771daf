use anchor_lang::prelude::*;

/// Custodies per pool. AUM instructions take every custody and its oracle as remaining accounts,
/// so this bound also keeps the heaviest transaction within size and account-lock limits.
pub const MAX_CUSTODIES: usize = 8;
pub const MAX_POOL_NAME_LEN: usize = 32;
/// LP token decimals: 1 LP = $1 at inception, so LP units line up with USD units.
pub const LP_DECIMALS: u8 = 6;

/// A liquidity pool (PDA seeds: `["pool", name]`) and its LP mint (`["lp_token_mint", pool]`).
#[account]
#[derive(InitSpace, Debug)]
pub struct Pool {
    #[max_len(MAX_POOL_NAME_LEN)]
    pub name: String,
    #[max_len(MAX_CUSTODIES)]
    pub custodies: Vec<Pubkey>,
    /// Assets under management (USD, 6 decimals) at the last `update_pool_aum` or LP action.
    pub aum_usd: u64,
    pub aum_updated_at: i64,
    pub inception_time: i64,
    pub bump: u8,
    pub lp_mint_bump: u8,
}

impl Pool {
    pub const SEED: &'static [u8] = b"pool";
    pub const LP_MINT_SEED: &'static [u8] = b"lp_token_mint";

    pub fn custody_index(&self, custody: &Pubkey) -> Option<usize> {
        self.custodies.iter().position(|c| c == custody)
    }
}

use crate::{
    error::PerpoolError,
    math::{self, Valuation},
    state::{book_value_usd, Custody, Prices},
};

/// A custody of the pool with its validated prices, loaded from remaining accounts.
pub struct PricedCustody {
    pub key: Pubkey,
    pub custody: Custody,
    pub prices: Prices,
}

impl Pool {
    /// Loads every custody of the pool and its oracle from `remaining`: the custodies first, in
    /// pool order, then their oracles in the same order. Anything else is rejected.
    pub fn load_custodies(&self, remaining: &[AccountInfo], now: i64) -> Result<Vec<PricedCustody>> {
        let n = self.custodies.len();
        require!(remaining.len() == 2 * n, PerpoolError::InvalidRemainingAccounts);
        let mut loaded = Vec::with_capacity(n);
        for (i, expected) in self.custodies.iter().enumerate() {
            let info = &remaining[i];
            require_keys_eq!(*info.key, *expected, PerpoolError::InvalidRemainingAccounts);
            require_keys_eq!(*info.owner, crate::ID, PerpoolError::InvalidRemainingAccounts);
            let custody = {
                let data = info.try_borrow_data()?;
                Custody::try_deserialize(&mut &data[..]).map_err(|_| PerpoolError::InvalidRemainingAccounts)?
            };
            let oracle = &remaining[n + i];
            require_keys_eq!(*oracle.key, custody.oracle.oracle_account, PerpoolError::InvalidRemainingAccounts);
            let prices = custody.prices(oracle, now)?;
            loaded.push(PricedCustody { key: *expected, custody, prices });
        }
        Ok(loaded)
    }

    /// Assets under management in USD: what the LPs own, less what open positions have won
    /// (plus what they have lost, up to their collateral). Valued `High` when minting LP tokens
    /// and `Low` when burning them, so every LP action is priced in the pool's favour. Built from
    /// the program's own accounting, so tokens sent straight to a vault do not move it.
    ///
    /// - A payoff market's book counts as won at most its profit cap (`max_profit_bps` of its
    ///   size, what its positions locked and can ever be paid): beyond that the profit is not
    ///   the pool's debt, and counting it would mint LP tokens at a discount that the capped
    ///   close then hands back.
    /// - Positions are credited their collateral's USD value at entry (`collateral_usd`), while
    ///   the pool holds the collateral tokens: a long's collateral in its own token is worth more
    ///   (or less) once the price moved, and the difference is the LPs'. So the collateral the
    ///   pool holds counts, valued like the LPs' tokens, and the traders' credit is owed.
    pub fn aum_usd(custodies: &[PricedCustody], valuation: Valuation) -> Result<u64> {
        let mut assets: u128 = 0;
        let mut trader_profit: u128 = 0;
        let mut trader_loss: u128 = 0;
        let mut collateral_credit: u128 = 0;
        for entry in custodies {
            let c = &entry.custody;
            let (spot, ema) = (&entry.prices.spot, &entry.prices.ema);
            let value = math::custody_value_usd(c.assets.owned, c.decimals, spot, ema, valuation)?;
            let collateral = math::custody_value_usd(c.assets.collateral, c.decimals, spot, ema, valuation)?;
            // u64 + u64 always fits u128; the running totals are checked.
            let held = u128::from(value) + u128::from(collateral);
            assets = assets.checked_add(held).ok_or(PerpoolError::MathOverflow)?;
            let credit = u128::from(c.longs.collateral_usd) + u128::from(c.shorts.collateral_usd);
            collateral_credit = collateral_credit.checked_add(credit).ok_or(PerpoolError::MathOverflow)?;
            let price = entry.prices.spot.to_price_9dp_floor()?;
            let long_value = book_value_usd(&c.longs, price)?;
            if long_value >= c.longs.size_usd {
                let won = (long_value - c.longs.size_usd).min(book_profit_cap(c, c.longs.size_usd)?);
                trader_profit = trader_profit.checked_add(u128::from(won)).ok_or(PerpoolError::MathOverflow)?;
            } else {
                trader_loss = trader_loss.checked_add(u128::from((c.longs.size_usd - long_value).min(c.longs.collateral_usd))).ok_or(PerpoolError::MathOverflow)?;
            }
            let short_value = book_value_usd(&c.shorts, price)?;
            if short_value <= c.shorts.size_usd {
                let won = (c.shorts.size_usd - short_value).min(book_profit_cap(c, c.shorts.size_usd)?);
                trader_profit = trader_profit.checked_add(u128::from(won)).ok_or(PerpoolError::MathOverflow)?;
            } else {
                trader_loss = trader_loss.checked_add(u128::from((short_value - c.shorts.size_usd).min(c.shorts.collateral_usd))).ok_or(PerpoolError::MathOverflow)?;
            }
        }
        let owed = trader_profit.checked_add(collateral_credit).ok_or(PerpoolError::MathOverflow)?;
        let aum = assets
            .checked_add(trader_loss)
            .ok_or(PerpoolError::MathOverflow)?
            .saturating_sub(owed);
        Ok(math::to_u64(aum)?)
    }
}

/// The most a book of `size_usd` on custody `c` can win: a payoff market's profit cap, no cap
/// for a token custody (its positions are paid from the tokens they locked, valued at spot).
fn book_profit_cap(c: &Custody, size_usd: u64) -> Result<u64> {
    if c.is_synthetic() {
        Ok(math::max_profit_usd(size_usd, c.payoff.max_profit_bps)?)
    } else {
        Ok(u64::MAX)
    }
}
