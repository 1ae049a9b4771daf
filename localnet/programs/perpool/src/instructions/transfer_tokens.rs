use anchor_lang::prelude::*;
use anchor_spl::token::{self, Token, TokenAccount, Transfer};

use crate::{error::PerpoolError, events::TokensTransferred};

#[derive(Accounts)]
pub struct TransferTokens<'info> {
    pub owner: Signer<'info>,

    #[account(mut, token::authority = owner)]
    pub from: Account<'info, TokenAccount>,

    #[account(
        mut,
        constraint = to.mint == from.mint @ PerpoolError::MintMismatch,
        constraint = to.key() != from.key() @ PerpoolError::SameAccount
    )]
    pub to: Account<'info, TokenAccount>,

    pub token_program: Program<'info, Token>,
}

pub fn handle_transfer_tokens(ctx: Context<TransferTokens>, amount: u64) -> Result<()> {
    require!(amount > 0, PerpoolError::ZeroAmount);
    let accounts = Transfer {
        from: ctx.accounts.from.to_account_info(),
        to: ctx.accounts.to.to_account_info(),
        authority: ctx.accounts.owner.to_account_info(),
    };
    token::transfer(
        CpiContext::new(ctx.accounts.token_program.to_account_info(), accounts),
        amount,
    )?;
    emit!(TokensTransferred {
        from: ctx.accounts.from.key(),
        to: ctx.accounts.to.key(),
        amount,
    });
    Ok(())
}
