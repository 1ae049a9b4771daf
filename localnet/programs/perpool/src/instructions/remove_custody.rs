use anchor_lang::prelude::*;
use anchor_spl::token::{self, CloseAccount, Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::AdminAction,
    state::{Custody, CustomOracle, Multisig, Perpool, Pool},
};

/// Removes an empty custody (no LP tokens' worth, collateral, fees or open positions), closing its
/// accounts. Tokens sent straight to the vault go to `receiving_account`.
#[derive(Accounts)]
pub struct RemoveCustody<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    /// CHECK: transfer authority PDA, signs for the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(mut, seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, close = admin, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    #[account(mut, address = custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub custody_token_account: Box<Account<'info, TokenAccount>>,

    #[account(mut, close = admin, seeds = [CustomOracle::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custom_oracle.bump)]
    pub custom_oracle: Box<Account<'info, CustomOracle>>,

    #[account(
        mut,
        constraint = receiving_account.mint == custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = receiving_account.owner != transfer_authority.key() @ PerpoolError::ReceivingAccountIsVault
    )]
    pub receiving_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

pub fn handle_remove_custody(ctx: Context<RemoveCustody>) -> Result<()> {
    // The receiving account is bound too: it takes whatever tokens were sent straight to the vault.
    let hash = Multisig::instruction_hash(
        "remove_custody",
        &[ctx.accounts.custody.key(), ctx.accounts.receiving_account.key()],
        &[],
    );
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    let custody = &ctx.accounts.custody;
    let a = &custody.assets;
    require!(
        a.owned == 0 && a.locked == 0 && a.collateral == 0 && a.protocol_fees == 0
            && custody.longs.open_positions == 0 && custody.shorts.open_positions == 0,
        PerpoolError::CustodyNotEmpty
    );
    let perpool = &ctx.accounts.perpool;
    perpool.transfer_from_vault(
        ctx.accounts.custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        ctx.accounts.custody_token_account.amount,
    )?;
    let seeds: &[&[u8]] = &[Perpool::TRANSFER_AUTHORITY_SEED, &[perpool.transfer_authority_bump]];
    token::close_account(CpiContext::new_with_signer(
        ctx.accounts.token_program.to_account_info(),
        CloseAccount {
            account: ctx.accounts.custody_token_account.to_account_info(),
            destination: ctx.accounts.admin.to_account_info(),
            authority: ctx.accounts.transfer_authority.to_account_info(),
        },
        &[seeds],
    ))?;
    let key = custody.key();
    ctx.accounts.pool.custodies.retain(|c| *c != key);
    emit!(AdminAction { instruction: "remove_custody".into(), target: key });
    Ok(())
}
