use anchor_lang::prelude::*;

use crate::instructions::views::accounts::PositionView;

/// Whether `liquidate` would accept the position now.
pub fn handle_get_liquidation_state(ctx: Context<PositionView>) -> Result<bool> {
    let s = ctx.accounts.load()?;
    s.position.is_liquidatable(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, s.pool_aum_usd)
}
