use anchor_lang::prelude::*;

use crate::{error::PerpoolError, instructions::views::accounts::PositionView, math, state::maintenance_margin_bps};

/// Price (9 decimals) at which the position becomes liquidatable, with fees owed now.
pub fn handle_get_liquidation_price(ctx: Context<PositionView>) -> Result<u64> {
    let s = ctx.accounts.load()?;
    let q = s.position.quote_close(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, math::BPS_DENOMINATOR)?;
    let fees = q.close_fee_usd.checked_add(q.borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?;
    Ok(math::liquidation_price(
        s.position.side.into(),
        s.position.price,
        s.position.size_usd,
        s.position.collateral_usd,
        fees,
        maintenance_margin_bps(&s.custody)?,
    )?)
}
