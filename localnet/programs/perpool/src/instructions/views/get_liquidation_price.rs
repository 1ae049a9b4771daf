use anchor_lang::prelude::*;

use crate::{error::PerpoolError, instructions::views::accounts::PositionView, math, state::maintenance_margin_bps};

/// Price (9 decimals) at which the position becomes liquidatable, with fees owed now.
pub fn handle_get_liquidation_price(ctx: Context<PositionView>) -> Result<u64> {
    let s = ctx.accounts.load()?;
    let q = s.position.quote_close(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, math::BPS_DENOMINATOR, s.pool_aum_usd, 0)?;
    let fees = [q.borrow_fee_usd, q.funding_paid_usd]
        .iter()
        .try_fold(q.close_fee_usd, |acc, f| acc.checked_add(*f))
        .ok_or(PerpoolError::MathOverflow)?;
    let credit = s.position.collateral_usd.checked_add(q.funding_received_usd).ok_or(PerpoolError::MathOverflow)?;
    Ok(math::liquidation_price(
        s.position.side.into(),
        s.position.price,
        s.position.size_usd,
        credit,
        fees,
        maintenance_margin_bps(&s.custody)?,
    )?)
}
