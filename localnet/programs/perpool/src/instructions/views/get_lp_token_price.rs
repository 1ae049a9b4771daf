use anchor_lang::prelude::*;

use crate::{instructions::views::accounts::PoolView, math::{self, Valuation}, state::Pool};

/// USD per LP token (6 decimals) at spot prices; $1 before the first deposit.
pub fn handle_get_lp_token_price<'info>(ctx: Context<'_, '_, 'info, 'info, PoolView<'info>>) -> Result<u64> {
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, Clock::get()?.unix_timestamp)?;
    let aum = Pool::aum_usd(&custodies, Valuation::Spot)?;
    Ok(math::lp_token_price_usd(aum, ctx.accounts.lp_token_mint.supply)?)
}
