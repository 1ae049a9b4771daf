use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::CollateralChanged,
    math,
    state::{load_position_custodies, sync_same_custody, Custody, Perpool, Pool, Position},
};

#[derive(Accounts)]
pub struct RemoveCollateral<'info> {
    pub owner: Signer<'info>,

    #[account(
        mut,
        constraint = receiving_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount,
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

    #[account(
        mut,
        has_one = owner @ PerpoolError::InvalidPosition,
        has_one = pool @ PerpoolError::InvalidPosition,
        has_one = custody @ PerpoolError::InvalidPosition,
        has_one = collateral_custody @ PerpoolError::InvalidPosition,
        seeds = [Position::SEED, owner.key().as_ref(), pool.key().as_ref(), custody.key().as_ref(), position.side.seed()],
        bump = position.bump
    )]
    pub position: Box<Account<'info, Position>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), collateral_custody.mint.as_ref()], bump = collateral_custody.bump)]
    pub collateral_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the collateral custody's oracle configuration when read.
    pub collateral_custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = collateral_custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub collateral_custody_token_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

/// Withdraws `collateral_usd` worth of collateral, as long as the position stays within the
/// maximum initial leverage counting its current loss and fees.
pub fn handle_remove_collateral(ctx: Context<RemoveCollateral>, collateral_usd: u64) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_collateral_change)?;
    require!(collateral_usd > 0, PerpoolError::ZeroAmount);
    let now = Clock::get()?.unix_timestamp;
    let (prices, collateral_prices, same) = load_position_custodies(
        &mut ctx.accounts.custody,
        &ctx.accounts.custody_oracle,
        &mut ctx.accounts.collateral_custody,
        &ctx.accounts.collateral_custody_oracle,
        now,
        ctx.accounts.pool.aum_usd,
    )?;
    let position = &ctx.accounts.position;
    require!(collateral_usd < position.collateral_usd, PerpoolError::InsufficientCollateral);
    // Paid at the high price: fewer tokens, in the pool's favour.
    let amount = math::usd_to_token_floor(collateral_usd, ctx.accounts.collateral_custody.decimals, &collateral_prices.max())?;
    require!(amount > 0, PerpoolError::ZeroAmount);
    require!(amount < position.collateral_amount, PerpoolError::InsufficientCollateral);
    let q = position.quote_close(&ctx.accounts.custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, math::BPS_DENOMINATOR, ctx.accounts.pool.aum_usd, 0)?;
    let remaining_usd = position.collateral_usd - collateral_usd;
    // Profit and funding owed to the position do not count: only what is already its own.
    let margin = math::margin_usd(remaining_usd, 0, q.loss_usd, q.settled_fees_usd()?);
    let leverage = math::leverage_bps(position.size_usd, margin);
    require!(leverage <= ctx.accounts.custody.pricing.max_initial_leverage, PerpoolError::LeverageTooHigh);

    perpool.transfer_from_vault(
        ctx.accounts.collateral_custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        amount,
    )?;
    {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        cc.assets.collateral = cc.assets.collateral.checked_sub(amount).ok_or(PerpoolError::MathOverflow)?;
    }
    let side = position.side;
    {
        let totals = ctx.accounts.custody.totals_mut(side);
        totals.collateral_usd = totals.collateral_usd.saturating_sub(collateral_usd);
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);
    let position = &mut ctx.accounts.position;
    position.collateral_amount = position.collateral_amount.checked_sub(amount).ok_or(PerpoolError::MathOverflow)?;
    position.collateral_usd = remaining_usd;
    position.update_time = now;
    emit!(CollateralChanged {
        owner: position.owner,
        position: position.key(),
        amount,
        collateral_usd_delta: collateral_usd,
        added: false,
        collateral_usd: remaining_usd,
    });
    Ok(())
}
