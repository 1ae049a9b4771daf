use anchor_lang::prelude::*;
use anchor_spl::token::Mint;

use crate::{
    error::PerpoolError,
    events::AdminAction,
    state::{Multisig, Perpool, Pool},
};

/// Removes a pool with no custodies and no LP tokens outstanding.
#[derive(Accounts)]
pub struct RemovePool<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    #[account(mut, seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(mut, close = admin, seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(seeds = [Pool::LP_MINT_SEED, pool.key().as_ref()], bump = pool.lp_mint_bump)]
    pub lp_token_mint: Box<Account<'info, Mint>>,
}

pub fn handle_remove_pool(ctx: Context<RemovePool>) -> Result<()> {
    let hash = Multisig::instruction_hash("remove_pool", &[ctx.accounts.pool.key()], &[]);
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    require!(
        ctx.accounts.pool.custodies.is_empty() && ctx.accounts.lp_token_mint.supply == 0,
        PerpoolError::PoolNotEmpty
    );
    let key = ctx.accounts.pool.key();
    ctx.accounts.perpool.pools.retain(|p| *p != key);
    emit!(AdminAction { instruction: "remove_pool".into(), target: key });
    Ok(())
}
