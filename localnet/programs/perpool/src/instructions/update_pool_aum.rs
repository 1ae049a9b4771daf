use anchor_lang::prelude::*;

use crate::{events::PoolAumUpdated, math::Valuation, state::Pool};

/// Recomputes and caches the pool's AUM at spot prices. Permissionless. Remaining accounts:
/// every custody of the pool, then their oracles.
#[derive(Accounts)]
pub struct UpdatePoolAum<'info> {
    #[account(mut, seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,
}

pub fn handle_update_pool_aum<'info>(ctx: Context<'_, '_, 'info, 'info, UpdatePoolAum<'info>>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, now)?;
    let aum = Pool::aum_usd(&custodies, Valuation::Spot)?;
    let pool = &mut ctx.accounts.pool;
    pool.aum_usd = aum;
    pool.aum_updated_at = now;
    emit!(PoolAumUpdated { pool: pool.key(), aum_usd: aum });
    Ok(())
}
