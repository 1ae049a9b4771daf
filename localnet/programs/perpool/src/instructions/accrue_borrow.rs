use anchor_lang::prelude::*;

use crate::{events::BorrowAccrued, state::{Custody, Pool}};

/// Advances a custody's cumulative borrow index to now. Permissionless and idempotent.
#[derive(Accounts)]
pub struct AccrueBorrow<'info> {
    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,
}

pub fn handle_accrue_borrow(ctx: Context<AccrueBorrow>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let custody = &mut ctx.accounts.custody;
    custody.accrue_borrow(now)?;
    emit!(BorrowAccrued {
        custody: custody.key(),
        hourly_rate: custody.borrow_state.current_rate,
        cumulative_interest: custody.borrow_state.cumulative_interest,
        timestamp: now,
    });
    Ok(())
}
