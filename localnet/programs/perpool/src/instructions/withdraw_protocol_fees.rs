use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::ProtocolFeesWithdrawn,
    state::{Custody, Multisig, Perpool, Pool},
};

#[derive(Accounts)]
pub struct WithdrawProtocolFees<'info> {
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    /// CHECK: transfer authority PDA, signs for the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    #[account(mut, address = custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub custody_token_account: Box<Account<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = receiving_account.mint == custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = receiving_account.owner != transfer_authority.key() @ PerpoolError::ReceivingAccountIsVault
    )]
    pub receiving_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

pub fn handle_withdraw_protocol_fees(ctx: Context<WithdrawProtocolFees>, amount: u64) -> Result<()> {
    let hash = Multisig::instruction_hash(
        "withdraw_protocol_fees",
        &[ctx.accounts.custody.key(), ctx.accounts.receiving_account.key()],
        &amount.try_to_vec()?,
    );
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    require!(amount > 0, PerpoolError::ZeroAmount);
    let custody = &mut ctx.accounts.custody;
    custody.assets.protocol_fees = custody
        .assets
        .protocol_fees
        .checked_sub(amount)
        .ok_or(PerpoolError::InsufficientProtocolFees)?;
    ctx.accounts.perpool.transfer_from_vault(
        ctx.accounts.custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        amount,
    )?;
    emit!(ProtocolFeesWithdrawn { custody: custody.key(), amount, receiver: ctx.accounts.receiving_account.key() });
    Ok(())
}
