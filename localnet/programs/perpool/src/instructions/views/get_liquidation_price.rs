use anchor_lang::prelude::*;

use crate::{instructions::views::accounts::PositionView, math, state::maintenance_margin_bps};

/// Price (9 decimals) at which the position becomes liquidatable, with fees owed now.
pub fn handle_get_liquidation_price(ctx: Context<PositionView>) -> Result<u64> {
    let s = ctx.accounts.load()?;
    let q = s.position.quote_close(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, math::BPS_DENOMINATOR, s.pool_aum_usd, 0)?;
    let fees = q.settled_fees_usd()?;
    let credit = q.credit_usd(s.position.collateral_usd)?;
    Ok(math::liquidation_price(
        s.position.side.into(),
        s.position.price,
        s.position.size_usd,
        credit,
        fees,
        maintenance_margin_bps(&s.custody)?,
    )?)
}
