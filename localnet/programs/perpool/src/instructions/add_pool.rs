use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token};

use crate::{
    error::PerpoolError,
    events::AdminAction,
    state::{Multisig, Perpool, Pool, LP_DECIMALS, MAX_POOLS, MAX_POOL_NAME_LEN},
};

#[derive(Accounts)]
#[instruction(name: String)]
pub struct AddPool<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    /// CHECK: transfer authority PDA, the LP mint's authority.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(mut, seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(init, payer = admin, space = 8 + Pool::INIT_SPACE, seeds = [Pool::SEED, name.as_bytes()], bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(
        init,
        payer = admin,
        mint::authority = transfer_authority,
        mint::freeze_authority = transfer_authority,
        mint::decimals = LP_DECIMALS,
        seeds = [Pool::LP_MINT_SEED, pool.key().as_ref()],
        bump
    )]
    pub lp_token_mint: Box<Account<'info, Mint>>,

    pub system_program: Program<'info, System>,
    pub token_program: Program<'info, Token>,
    pub rent: Sysvar<'info, Rent>,
}

pub fn handle_add_pool(ctx: Context<AddPool>, name: String) -> Result<()> {
    require!(!name.is_empty() && name.len() <= MAX_POOL_NAME_LEN, PerpoolError::InvalidPoolName);
    let hash = Multisig::instruction_hash("add_pool", &[ctx.accounts.pool.key()], &name.try_to_vec()?);
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;

    let perpool = &mut ctx.accounts.perpool;
    require!(perpool.pools.len() < MAX_POOLS, PerpoolError::TooManyPools);
    perpool.pools.push(ctx.accounts.pool.key());
    let pool = &mut ctx.accounts.pool;
    pool.name = name;
    pool.custodies = Vec::new();
    pool.aum_usd = 0;
    pool.inception_time = Clock::get()?.unix_timestamp;
    pool.bump = ctx.bumps.pool;
    pool.lp_mint_bump = ctx.bumps.lp_token_mint;
    emit!(AdminAction { instruction: "add_pool".into(), target: pool.key() });
    Ok(())
}
