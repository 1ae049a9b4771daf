use anchor_lang::prelude::*;

use crate::{instructions::views::accounts::PositionView, state::CloseQuote};

/// Quote of `close_position` for `close_bps` of the position.
pub fn handle_get_exit_price_and_fee(ctx: Context<PositionView>, close_bps: u64) -> Result<CloseQuote> {
    let s = ctx.accounts.load()?;
    s.position.quote_close(&s.custody, &s.prices, &s.collateral_custody, &s.collateral_prices, close_bps, s.pool_aum_usd, 0)
}
