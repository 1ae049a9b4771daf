use anchor_lang::prelude::*;

use crate::{instructions::views::accounts::PositionView, math};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct PositionPnl {
    pub profit_usd: u64,
    pub loss_usd: u64,
    pub borrow_fee_usd: u64,
    pub close_fee_usd: u64,
    pub exit_price: u64,
    pub funding_paid_usd: u64,
    pub funding_received_usd: u64,
}

/// Unrealized PnL and fees owed if the whole position closed now.
pub fn handle_get_pnl(ctx: Context<PositionView>) -> Result<PositionPnl> {
    let s = ctx.accounts.load()?;
    let q = s.position.quote_close(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, math::BPS_DENOMINATOR, s.pool_aum_usd, 0)?;
    Ok(PositionPnl {
        profit_usd: q.profit_usd,
        loss_usd: q.loss_usd,
        borrow_fee_usd: q.borrow_fee_usd,
        close_fee_usd: q.close_fee_usd,
        exit_price: q.exit_price,
        funding_paid_usd: q.funding_paid_usd,
        funding_received_usd: q.funding_received_usd,
    })
}
