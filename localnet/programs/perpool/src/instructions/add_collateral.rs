use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::CollateralChanged,
    math,
    state::{sync_same_custody, meets_min_leverage, Custody, Perpool, Pool, Position},
};

#[derive(Accounts)]
pub struct AddCollateral<'info> {
    pub owner: Signer<'info>,

    #[account(mut, constraint = funding_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount)]
    pub funding_account: Box<Account<'info, TokenAccount>>,

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

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), collateral_custody.mint.as_ref()], bump = collateral_custody.bump)]
    pub collateral_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the collateral custody's oracle configuration when read.
    pub collateral_custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = collateral_custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub collateral_custody_token_account: Box<Account<'info, TokenAccount>>,

    pub token_program: Program<'info, Token>,
}

pub fn handle_add_collateral(ctx: Context<AddCollateral>, amount: u64) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_collateral_change)?;
    require!(amount > 0, PerpoolError::ZeroAmount);
    let now = Clock::get()?.unix_timestamp;
    let same = ctx.accounts.custody.key() == ctx.accounts.collateral_custody.key();
    let collateral_prices = ctx.accounts.collateral_custody.prices(&ctx.accounts.collateral_custody_oracle, now)?;
    // Valued low: added collateral never counts for more than it is worth.
    let added_usd = math::token_to_usd_floor(amount, ctx.accounts.collateral_custody.decimals, &collateral_prices.min())?;
    require!(added_usd > 0, PerpoolError::ZeroAmount);
    // Collateral is accounted in USD at the price it came in. Below 1x (size < collateral) the
    // pool would hold part of the trader's tokens as a USD claim that no locked tokens back:
    // after a price fall it would pay out more tokens than it ever received. So collateral may
    // only be added while the position stays at or above the minimum initial leverage (>= 1x).
    let position = &ctx.accounts.position;
    let new_collateral_usd = position.collateral_usd.checked_add(added_usd).ok_or(PerpoolError::MathOverflow)?;
    require!(
        meets_min_leverage(position.size_usd, new_collateral_usd, ctx.accounts.custody.pricing.min_initial_leverage)?,
        PerpoolError::LeverageTooLow
    );
    perpool.transfer_to_vault(
        ctx.accounts.funding_account.to_account_info(),
        ctx.accounts.collateral_custody_token_account.to_account_info(),
        ctx.accounts.owner.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        amount,
    )?;
    {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        cc.assets.collateral = cc.assets.collateral.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
    }
    let side = ctx.accounts.position.side;
    {
        let totals = ctx.accounts.custody.totals_mut(side);
        totals.collateral_usd = totals.collateral_usd.checked_add(added_usd).ok_or(PerpoolError::MathOverflow)?;
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);
    let position = &mut ctx.accounts.position;
    position.collateral_amount = position.collateral_amount.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
    position.collateral_usd = position.collateral_usd.checked_add(added_usd).ok_or(PerpoolError::MathOverflow)?;
    position.update_time = now;
    emit!(CollateralChanged {
        owner: position.owner,
        position: position.key(),
        amount,
        collateral_usd_delta: added_usd,
        added: true,
        collateral_usd: position.collateral_usd,
    });
    Ok(())
}
