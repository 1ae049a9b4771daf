use anchor_lang::prelude::*;

use crate::{
    events::FundingUpdated,
    state::{Custody, Pool},
};

/// Advances a custody's funding indices to now and resets its rate from the current open
/// interest and the pool's AUM. Permissionless and idempotent within a timestamp.
#[derive(Accounts)]
pub struct UpdateFunding<'info> {
    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,
}

pub fn handle_update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let aum = ctx.accounts.pool.aum_usd;
    let custody = &mut ctx.accounts.custody;
    custody.accrue_funding(now, aum)?;
    emit!(FundingUpdated {
        custody: custody.key(),
        hourly_rate: custody.funding_state.current_rate,
        long_index: custody.funding_state.long_index,
        short_index: custody.funding_state.short_index,
    });
    Ok(())
}
