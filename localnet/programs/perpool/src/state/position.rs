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
    /// Traded custody's funding index (this side) when funding was last settled.
    pub funding_index_snapshot: i128,
    /// Funding settled into the position but not yet paid (USD; negative = owed to it).
    pub unpaid_funding_usd: i64,
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
    /// Price impact included in `entry_price` (9 decimals, fraction of the price).
    pub price_impact: u64,
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
    /// Price impact included in `exit_price` (9 decimals).
    pub price_impact: u64,
    /// Funding the slice pays (or receives) at settlement.
    pub funding_paid_usd: u64,
    pub funding_received_usd: u64,
    /// Flat auto-close fee charged on a liquidation (0 for a trader's own close).
    pub auto_close_fee_usd: u64,
}

impl CloseQuote {
    /// What a full close settles against the position besides the auto-close fee: the close
    /// fee, the borrow fee and funding paid.
    pub fn settled_fees_usd(&self) -> Result<u64> {
        Ok(math::checked_sum(&[self.close_fee_usd, self.borrow_fee_usd, self.funding_paid_usd])?)
    }

    /// `collateral_usd` plus the funding the position receives.
    pub fn credit_usd(&self, collateral_usd: u64) -> Result<u64> {
        Ok(collateral_usd.checked_add(self.funding_received_usd).ok_or(PerpoolError::MathOverflow)?)
    }
}

/// Price the pool trades at: longs buy at the higher of spot/EMA and sell at the lower,
/// shorts the reverse.
fn trade_price(side: Side, prices: &Prices, opening: bool) -> OraclePrice {
    match (side, opening) {
        (Side::Long, true) | (Side::Short, false) => prices.max(),
        (Side::Long, false) | (Side::Short, true) => prices.min(),
    }
}

/// The 9-dp execution price of a trade of `size_usd`: the pool-favourable oracle price moved
/// against the trader by the custody's slippage curve. Returns (price, impact).
fn execution_price(side: Side, custody: &Custody, prices: &Prices, opening: bool, size_usd: u64, pool_aum_usd: u64) -> Result<(u64, u64)> {
    let oracle = trade_price(side, prices, opening);
    let base = if opening { math::entry_price_9dp(side.into(), &oracle)? } else { math::exit_price_9dp(side.into(), &oracle)? };
    let (a, b) = custody.slippage.for_side(side);
    let impact = math::price_impact(size_usd, pool_aum_usd, a, b)?;
    // Buying (long open, short close) moves the price up; selling moves it down.
    let buying = matches!((side, opening), (Side::Long, true) | (Side::Short, false));
    Ok((math::apply_impact(base, impact, buying)?, impact))
}

/// Trading fee on `size_usd` at `fee_bps`, at least the custody's minimum fee.
pub fn trading_fee_usd(custody: &Custody, size_usd: u64, fee_bps: u64) -> Result<u64> {
    Ok(math::fee_usd_with_minimum(size_usd, fee_bps, custody.fees.min_fee_usd)?)
}

/// Tokens of the collateral custody locked for a position of `size_usd` with `collateral_usd`:
/// what the pool may have to pay beyond the trader's own collateral. A long on a real token
/// pays out in that token, so the borrowed part (size − collateral) bounds it; a short's profit
/// in the stable can reach its full size; a payoff market's profit is capped at
/// `max_profit_bps` of size.
fn locked_usd(side: Side, custody: &Custody, size_usd: u64, collateral_usd: u64) -> Result<u64> {
    if custody.is_synthetic() {
        return Ok(math::max_profit_usd(size_usd, custody.payoff.max_profit_bps)?);
    }
    Ok(match side {
        Side::Long => size_usd.saturating_sub(collateral_usd),
        Side::Short => size_usd,
    })
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
        pool_aum_usd: u64,
    ) -> Result<OpenQuote> {
        require!(collateral_amount > 0 && size_usd > 0, PerpoolError::ZeroAmount);
        require!(size_usd >= custody.pricing.min_trade_size_usd, PerpoolError::TradeTooSmall);
        let (entry_price, price_impact) = execution_price(side, custody, prices, true, size_usd, pool_aum_usd)?;
        let fee_usd = trading_fee_usd(custody, size_usd, custody.fees.open_position_bps)?;
        // Collateral is valued low, fee tokens rounded up: both in the pool's favour.
        let gross_collateral_usd = math::token_to_usd_floor(collateral_amount, collateral_custody.decimals, &collateral_prices.min())?;
        let fee_amount = math::usd_to_token_ceil(fee_usd, collateral_custody.decimals, &collateral_prices.min())?;
        require!(fee_amount < collateral_amount && fee_usd < gross_collateral_usd, PerpoolError::InsufficientCollateral);
        let collateral_usd = gross_collateral_usd - fee_usd;
        let leverage_bps = math::leverage_bps(size_usd, i128::from(collateral_usd));
        let borrowed_usd = locked_usd(side, custody, size_usd, collateral_usd)?;
        let locked_amount = math::usd_to_token_ceil(borrowed_usd, collateral_custody.decimals, &collateral_prices.min())?;
        let liquidation_price = math::liquidation_price(
            side.into(),
            entry_price,
            size_usd,
            collateral_usd,
            trading_fee_usd(custody, size_usd, custody.fees.close_position_bps)?,
            maintenance_margin_bps(custody)?,
        )?;
        Ok(OpenQuote { entry_price, fee_usd, fee_amount, collateral_usd, leverage_bps, locked_amount, liquidation_price, price_impact })
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

    /// Funding owed at the traded custody's current index (accrue it first); negative = the
    /// position is owed funding.
    pub fn funding_usd(&self, custody: &Custody) -> Result<i64> {
        let accrued = math::funding_usd(self.size_usd, custody.funding_index(self.side), self.funding_index_snapshot)?;
        Ok(accrued.checked_add(self.unpaid_funding_usd).ok_or(PerpoolError::MathOverflow)?)
    }

    /// Closing `close_bps` of the position at the current price. The closed slice pays the
    /// close fee on its size, `auto_close_fee_usd` (liquidations), and its share of the borrow
    /// fees and funding owed; it receives its share of funding owed to the position.
    #[allow(clippy::too_many_arguments)]
    pub fn quote_close(
        &self,
        custody: &Custody,
        prices: &Prices,
        collateral_custody: &Custody,
        collateral_prices: &Prices,
        close_bps: u64,
        pool_aum_usd: u64,
        auto_close_fee_usd: u64,
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
        let (exit_price, price_impact) = execution_price(self.side, custody, prices, false, part.size.closed, pool_aum_usd)?;
        let close_fee_usd = trading_fee_usd(custody, part.size.closed, custody.fees.close_position_bps)?;
        // A partial close pays its share of the borrow fee owed; the rest stays owed by the
        // remaining position (`unpaid_borrow_fee_usd`).
        let borrow_owed = self.borrow_fee_usd(collateral_custody)?;
        let borrow_fee_usd = if close_bps == math::BPS_DENOMINATOR {
            borrow_owed
        } else {
            math::split_bps_ceil(borrow_owed, close_bps)?.closed
        };
        // Funding: the slice pays its share rounded up, or receives its share rounded down.
        let funding_owed = self.funding_usd(custody)?;
        let (funding_paid_usd, funding_received_usd) = if close_bps == math::BPS_DENOMINATOR {
            math::funding_parts(funding_owed)
        } else {
            let (paid, received) = math::funding_parts(funding_owed);
            (math::split_bps_ceil(paid, close_bps)?.closed, math::split_bps_floor(received, close_bps)?.closed)
        };
        let fees = math::checked_sum(&[close_fee_usd, borrow_fee_usd, auto_close_fee_usd, funding_paid_usd])?;
        let credit_usd = part.collateral.closed.checked_add(funding_received_usd).ok_or(PerpoolError::MathOverflow)?;
        let amounts = math::close_amounts(self.side.into(), part.size.closed, credit_usd, self.price, exit_price, fees)?;
        // Paid in collateral tokens valued high: fewer tokens, in the pool's favour. The pool
        // never pays more than the slice's collateral plus the tokens locked for it.
        let decimals = collateral_custody.decimals;
        let uncapped_amount = math::usd_to_token_floor_saturating(amounts.payout_usd, decimals, &collateral_prices.max())?;
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
            price_impact,
            funding_paid_usd,
            funding_received_usd,
            auto_close_fee_usd,
        })
    }

    /// Funding still owed after closing the slice settled by `q` (signed, see `funding_usd`).
    pub fn funding_after(&self, custody: &Custody, q: &CloseQuote) -> Result<i64> {
        let owed = i128::from(self.funding_usd(custody)?) - i128::from(q.funding_paid_usd) + i128::from(q.funding_received_usd);
        Ok(i64::try_from(owed).map_err(|_| PerpoolError::MathOverflow)?)
    }

    /// The liquidation step that applies now (see `math::liquidation_steps`), or `None` for a
    /// healthy position. Margin is collateral + profit − loss − close and borrow fees ± funding,
    /// all as a full close would settle them (without the auto-close fee).
    pub fn liquidation_step(
        &self,
        custody: &Custody,
        prices: &Prices,
        collateral_custody: &Custody,
        collateral_prices: &Prices,
        pool_aum_usd: u64,
    ) -> Result<Option<usize>> {
        let q = self.quote_close(custody, prices, collateral_custody, collateral_prices, math::BPS_DENOMINATOR, pool_aum_usd, 0)?;
        let margin = math::margin_usd(q.credit_usd(self.collateral_usd)?, q.profit_usd, q.loss_usd, q.settled_fees_usd()?);
        Ok(math::liquidation_step(margin, self.size_usd, maintenance_margin_bps(custody)?, &custody.liquidation.ladder())?)
    }

    /// Whether the position may be liquidated now: margin below the maintenance margin of
    /// 1 / max_leverage of size (the first liquidation step).
    pub fn is_liquidatable(
        &self,
        custody: &Custody,
        prices: &Prices,
        collateral_custody: &Custody,
        collateral_prices: &Prices,
        pool_aum_usd: u64,
    ) -> Result<bool> {
        Ok(self.liquidation_step(custody, prices, collateral_custody, collateral_prices, pool_aum_usd)?.is_some())
    }
}
