use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::Swapped,
    math,
    state::{Custody, Perpool, Pool, Prices},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct SwapParams {
    pub amount_in: u64,
    pub min_amount_out: u64,
}

/// Swaps one pool token for another at oracle prices, less the swap fee.
#[derive(Accounts)]
pub struct Swap<'info> {
    pub owner: Signer<'info>,

    #[account(mut, constraint = funding_account.mint == receiving_custody.mint @ PerpoolError::InvalidTokenAccount)]
    pub funding_account: Box<Account<'info, TokenAccount>>,

    #[account(
        mut,
        constraint = receiving_account.mint == dispensing_custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = receiving_account.owner != transfer_authority.key() @ PerpoolError::ReceivingAccountIsVault
    )]
    pub receiving_account: Box<Account<'info, TokenAccount>>,

    /// CHECK: transfer authority PDA, signs for the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    /// The custody that receives the user's tokens.
    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), receiving_custody.mint.as_ref()], bump = receiving_custody.bump)]
    pub receiving_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the receiving custody's oracle configuration when read.
    pub receiving_custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = receiving_custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub receiving_custody_token_account: Box<Account<'info, TokenAccount>>,

    /// The custody that pays out.
    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), dispensing_custody.mint.as_ref()], bump = dispensing_custody.bump)]
    pub dispensing_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the dispensing custody's oracle configuration when read.
    pub dispensing_custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = dispensing_custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub dispensing_custody_token_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct SwapQuote {
    pub amount_out: u64,
    pub fee_amount: u64,
    pub value_usd: u64,
}

pub fn quote_swap(
    receiving: &Custody,
    receiving_prices: &Prices,
    dispensing: &Custody,
    dispensing_prices: &Prices,
    amount_in: u64,
) -> Result<SwapQuote> {
    require!(amount_in > 0, PerpoolError::ZeroAmount);
    receiving.require_tokens()?;
    dispensing.require_tokens()?;
    // In valued low, out priced high: each leg rounds toward the pool.
    let value_usd = math::token_to_usd_floor(amount_in, receiving.decimals, &receiving_prices.min())?;
    let gross = math::usd_to_token_floor(value_usd, dispensing.decimals, &dispensing_prices.max())?;
    let fee_amount = math::fee_tokens(gross, dispensing.fees.swap_bps)?;
    let amount_out = gross.checked_sub(fee_amount).ok_or(PerpoolError::MathOverflow)?;
    require!(amount_out > 0, PerpoolError::ZeroAmount);
    require!(gross <= dispensing.available()?, PerpoolError::InsufficientLiquidity);
    Ok(SwapQuote { amount_out, fee_amount, value_usd })
}

pub fn handle_swap(ctx: Context<Swap>, params: SwapParams) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_swap)?;
    require_keys_neq!(ctx.accounts.receiving_custody.key(), ctx.accounts.dispensing_custody.key(), PerpoolError::SameCustody);
    let now = Clock::get()?.unix_timestamp;
    let receiving_prices = ctx.accounts.receiving_custody.prices(&ctx.accounts.receiving_custody_oracle, now)?;
    let dispensing_prices = ctx.accounts.dispensing_custody.prices(&ctx.accounts.dispensing_custody_oracle, now)?;
    ctx.accounts.receiving_custody.accrue_borrow(now)?;
    ctx.accounts.dispensing_custody.accrue_borrow(now)?;
    let q = quote_swap(&ctx.accounts.receiving_custody, &receiving_prices, &ctx.accounts.dispensing_custody, &dispensing_prices, params.amount_in)?;
    require!(q.amount_out >= params.min_amount_out, PerpoolError::SlippageExceeded);

    perpool.transfer_to_vault(
        ctx.accounts.funding_account.to_account_info(),
        ctx.accounts.receiving_custody_token_account.to_account_info(),
        ctx.accounts.owner.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        params.amount_in,
    )?;
    perpool.transfer_from_vault(
        ctx.accounts.dispensing_custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        q.amount_out,
    )?;
    let receiving = &mut ctx.accounts.receiving_custody;
    receiving.assets.owned = receiving.assets.owned.checked_add(params.amount_in).ok_or(PerpoolError::MathOverflow)?;
    receiving.stats.volume_swap_usd = receiving.stats.volume_swap_usd.saturating_add(q.value_usd);
    let dispensing = &mut ctx.accounts.dispensing_custody;
    let gross = q.amount_out.checked_add(q.fee_amount).ok_or(PerpoolError::MathOverflow)?;
    dispensing.assets.owned = dispensing.assets.owned.checked_sub(gross).ok_or(PerpoolError::InsufficientLiquidity)?;
    dispensing.collect_fee(q.fee_amount)?;
    let fee_usd = math::token_to_usd_ceil(q.fee_amount, dispensing.decimals, &dispensing_prices.max())?;
    dispensing.stats.fees_swap_usd = dispensing.stats.fees_swap_usd.saturating_add(fee_usd);
    emit!(Swapped {
        owner: ctx.accounts.owner.key(),
        custody_in: ctx.accounts.receiving_custody.key(),
        custody_out: ctx.accounts.dispensing_custody.key(),
        amount_in: params.amount_in,
        amount_out: q.amount_out,
        fee_amount: q.fee_amount,
    });
    Ok(())
}
