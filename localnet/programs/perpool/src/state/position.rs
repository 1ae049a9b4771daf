use anchor_lang::prelude::*;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, PartialEq, Eq)]
pub enum Side {
    Long,
    Short,
}

impl Side {
    pub fn seed(&self) -> &'static [u8] {
        match self {
            Side::Long => b"long",
            Side::Short => b"short",
        }
    }
}

/// A trader's position (PDA seeds: `["position", owner, pool, custody, side]`). Longs hold
/// collateral in the traded token; shorts in a stable custody. Size beyond collateral is backed
/// by tokens locked in the collateral custody.
#[account]
#[derive(InitSpace, Debug)]
pub struct Position {
    pub owner: Pubkey,
    pub pool: Pubkey,
    pub custody: Pubkey,
    pub collateral_custody: Pubkey,
    pub side: Side,
    pub open_time: i64,
    pub update_time: i64,
    /// Entry price, USD per whole token with 9 decimals.
    pub price: u64,
    pub size_usd: u64,
    /// Collateral value at entry net of the open fee (USD, 6 decimals).
    pub collateral_usd: u64,
    /// Collateral tokens held for this position in the collateral custody.
    pub collateral_amount: u64,
    /// Tokens locked in the collateral custody for this position's profit.
    pub locked_amount: u64,
    /// Collateral custody's cumulative borrow index when fees were last settled.
    pub borrow_index_snapshot: u128,
    /// Borrow fees settled into the position but not yet paid (USD).
    pub unpaid_borrow_fee_usd: u64,
    pub bump: u8,
}

impl Position {
    pub const SEED: &'static [u8] = b"position";
}

use crate::{
    error::PerpoolError,
    math::{self, OraclePrice},
    state::{Custody, Prices},
};

impl From<Side> for math::Side {
    fn from(side: Side) -> Self {
        match side {
            Side::Long => math::Side::Long,
            Side::Short => math::Side::Short,
        }
    }
}

/// What opening a position costs and locks; computed the same way for the quote view and the
/// instruction.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct OpenQuote {
    pub entry_price: u64,
    pub fee_usd: u64,
    pub fee_amount: u64,
    /// Collateral value after the fee (USD).
    pub collateral_usd: u64,
    pub leverage_bps: u64,
    pub locked_amount: u64,
    pub liquidation_price: u64,
}

/// What closing (part of) a position pays out; shared by close, liquidate and the views.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct CloseQuote {
    pub exit_price: u64,
    pub size_usd: u64,
    pub collateral_usd: u64,
    pub collateral_amount: u64,
    pub locked_amount: u64,
    pub profit_usd: u64,
    pub loss_usd: u64,
    pub close_fee_usd: u64,
    pub borrow_fee_usd: u64,
    pub payout_usd: u64,
    pub payout_amount: u64,
    pub bad_debt_usd: u64,
}

/// Price the pool trades at: longs buy at the higher of spot/EMA and sell at the lower,
/// shorts the reverse.
fn trade_price(side: Side, prices: &Prices, opening: bool) -> OraclePrice {
    match (side, opening) {
        (Side::Long, true) | (Side::Short, false) => prices.max(),
        (Side::Long, false) | (Side::Short, true) => prices.min(),
    }
}

pub fn maintenance_margin_bps(custody: &Custody) -> Result<u64> {
    Ok(math::maintenance_margin_bps_for_max_leverage(custody.pricing.max_leverage)?)
}

/// Whether `size / collateral >= min_leverage_bps / 10_000`, compared exactly (`leverage_bps`
/// rounds up, which is exact against a maximum but lets a position just under a minimum pass).
pub fn meets_min_leverage(size_usd: u64, collateral_usd: u64, min_leverage_bps: u64) -> Result<bool> {
    let scaled_size = u128::from(size_usd).checked_mul(u128::from(math::BPS_DENOMINATOR)).ok_or(PerpoolError::MathOverflow)?;
    let min_scaled_size = u128::from(min_leverage_bps).checked_mul(u128::from(collateral_usd)).ok_or(PerpoolError::MathOverflow)?;
    Ok(scaled_size >= min_scaled_size)
}

impl Position {
    pub fn quote_open(
        side: Side,
        custody: &Custody,
        prices: &Prices,
        collateral_custody: &Custody,
        collateral_prices: &Prices,
        collateral_amount: u64,
        size_usd: u64,
    ) -> Result<OpenQuote> {
        require!(collateral_amount > 0 && size_usd > 0, PerpoolError::ZeroAmount);
        let entry_price = math::entry_price_9dp(side.into(), &trade_price(side, prices, true))?;
        let fee_usd = math::fee_usd(size_usd, custody.fees.open_position_bps)?;
        // Collateral is valued low, fee tokens rounded up: both in the pool's favour.
        let gross_collateral_usd = math::token_to_usd_floor(collateral_amount, collateral_custody.decimals, &collateral_prices.min())?;
        let fee_amount = math::usd_to_token_ceil(fee_usd, collateral_custody.decimals, &collateral_prices.min())?;
        require!(fee_amount < collateral_amount && fee_usd < gross_collateral_usd, PerpoolError::InsufficientCollateral);
        let collateral_usd = gross_collateral_usd - fee_usd;
        let leverage_bps = math::leverage_bps(size_usd, i128::from(collateral_usd));
        // Tokens locked in the collateral custody back what the pool may have to pay beyond the
        // trader's own collateral. A long pays out in the traded token, so the borrowed part
        // (size − collateral) bounds it; a short's profit in the stable can reach its full size.
        let borrowed_usd = match side {
            Side::Long => size_usd.saturating_sub(collateral_usd),
            Side::Short => size_usd,
        };
        let locked_amount = math::usd_to_token_ceil(borrowed_usd, collateral_custody.decimals, &collateral_prices.min())?;
        let liquidation_price = math::liquidation_price(
            side.into(),
            entry_price,
            size_usd,
            collateral_usd,
            math::fee_usd(size_usd, custody.fees.close_position_bps)?,
            maintenance_margin_bps(custody)?,
        )?;
        Ok(OpenQuote { entry_price, fee_usd, fee_amount, collateral_usd, leverage_bps, locked_amount, liquidation_price })
    }

    /// Borrow fee owed at the collateral custody's current index (accrue it first).
    pub fn borrow_fee_usd(&self, collateral_custody: &Custody) -> Result<u64> {
        let accrued = math::borrow_fee_usd(
            self.size_usd,
            collateral_custody.borrow_state.cumulative_interest,
            self.borrow_index_snapshot,
        )?;
        Ok(accrued.checked_add(self.unpaid_borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?)
    }

    /// Closing `close_bps` of the position at the current price. The closed slice pays the
    /// close fee on its size and its share of the borrow fees owed.
    pub fn quote_close(
        &self,
        custody: &Custody,
        prices: &Prices,
        collateral_custody: &Custody,
        collateral_prices: &Prices,
        close_bps: u64,
    ) -> Result<CloseQuote> {
        require!(close_bps > 0 && close_bps <= math::BPS_DENOMINATOR, PerpoolError::InvalidCloseSize);
        // A slice whose size rounds to zero would close nothing: say so by name.
        require!(math::split_bps_floor(self.size_usd, close_bps)?.closed > 0, PerpoolError::InvalidCloseSize);
        let part = math::partial_close(self.size_usd, self.collateral_usd, 0, close_bps)?;
        let collateral_amount = math::split_bps_floor(self.collateral_amount, close_bps)?.closed;
        let locked_amount = if close_bps == math::BPS_DENOMINATOR {
            self.locked_amount
        } else {
            math::split_bps_floor(self.locked_amount, close_bps)?.closed
        };
        let exit_price = math::exit_price_9dp(self.side.into(), &trade_price(self.side, prices, false))?;
        let close_fee_usd = math::fee_usd(part.size.closed, custody.fees.close_position_bps)?;
        // A partial close pays its share of the borrow fee owed; the rest stays owed by the
        // remaining position (`unpaid_borrow_fee_usd`).
        let borrow_owed = self.borrow_fee_usd(collateral_custody)?;
        let borrow_fee_usd = if close_bps == math::BPS_DENOMINATOR {
            borrow_owed
        } else {
            math::split_bps_ceil(borrow_owed, close_bps)?.closed
        };
        let fees = close_fee_usd.checked_add(borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?;
        let amounts = math::close_amounts(self.side.into(), part.size.closed, part.collateral.closed, self.price, exit_price, fees)?;
        // Paid in collateral tokens valued high: fewer tokens, in the pool's favour. The pool
        // never pays more than the slice's collateral plus the tokens locked for it.
        let decimals = collateral_custody.decimals;
        let uncapped_amount = math::usd_to_token_floor(amounts.payout_usd, decimals, &collateral_prices.max())?;
        let max_amount = collateral_amount.checked_add(locked_amount).ok_or(PerpoolError::MathOverflow)?;
        let payout_amount = uncapped_amount.min(max_amount);
        let payout_usd = if payout_amount < uncapped_amount {
            math::token_to_usd_floor(payout_amount, decimals, &collateral_prices.max())?
        } else {
            amounts.payout_usd
        };
        Ok(CloseQuote {
            exit_price,
            size_usd: part.size.closed,
            collateral_usd: part.collateral.closed,
            collateral_amount,
            locked_amount,
            profit_usd: amounts.profit_usd,
            loss_usd: amounts.loss_usd,
            close_fee_usd,
            borrow_fee_usd,
            payout_usd,
            payout_amount,
            bad_debt_usd: amounts.bad_debt_usd,
        })
    }

    /// Whether the position may be liquidated now: margin (collateral + profit − loss − borrow
    /// and close fees) below the maintenance margin of 1 / max_leverage of size.
    pub fn is_liquidatable(&self, custody: &Custody, prices: &Prices, collateral_custody: &Custody, collateral_prices: &Prices) -> Result<bool> {
        let q = self.quote_close(custody, prices, collateral_custody, collateral_prices, math::BPS_DENOMINATOR)?;
        Ok(math::is_liquidatable(
            self.collateral_usd,
            q.profit_usd,
            q.loss_usd,
            q.close_fee_usd.checked_add(q.borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?,
            self.size_usd,
            maintenance_margin_bps(custody)?,
        )?)
    }
}
