use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::{InsuranceFundChanged, PositionClosed},
    math,
    state::{load_position_custodies, sync_same_custody, Custody, Perpool, Pool, Position, Side},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct ClosePositionParams {
    /// Worst acceptable exit price (9 decimals): a floor for longs, a ceiling for shorts.
    pub price: u64,
    /// Share of the position to close in bps (10_000 = all of it).
    pub close_bps: u64,
}

#[derive(Accounts)]
pub struct ClosePosition<'info> {
    #[account(mut)]
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

pub fn handle_close_position(ctx: Context<ClosePosition>, params: ClosePositionParams) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_close_position)?;
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
    let full = params.close_bps == math::BPS_DENOMINATOR;
    if !full {
        // A partial close must not let an under-margined position shed its worst part.
        require!(
            !position.is_liquidatable(&ctx.accounts.custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, ctx.accounts.pool.aum_usd)?,
            PerpoolError::InvalidCloseSize
        );
    }
    let q = position.quote_close(&ctx.accounts.custody, &prices, &ctx.accounts.collateral_custody, &collateral_prices, params.close_bps, ctx.accounts.pool.aum_usd, 0)?;
    require!(q.size_usd > 0 && (full || q.size_usd < position.size_usd), PerpoolError::InvalidCloseSize);
    // A partial close may not leave a position below the minimum trade size.
    require!(full || position.size_usd - q.size_usd >= ctx.accounts.custody.pricing.min_trade_size_usd, PerpoolError::TradeTooSmall);
    // A partial close pays its own fees: a slice whose fees (the minimum fee) exceed what it
    // holds would book the shortfall as bad debt, drawn from the insurance fund, while the rest
    // of the position stays open.
    require!(full || q.bad_debt_usd == 0, PerpoolError::CloseTooSmall);
    match position.side {
        Side::Long => require!(q.exit_price >= params.price, PerpoolError::PriceLimitExceeded),
        Side::Short => require!(q.exit_price <= params.price, PerpoolError::PriceLimitExceeded),
    }
    let fees_usd = q.close_fee_usd.checked_add(q.borrow_fee_usd).ok_or(PerpoolError::MathOverflow)?;
    // Collected out of what the pool keeps (settle_close), so a crashed price saturates it.
    let fee_amount = math::usd_to_token_floor_saturating(fees_usd, ctx.accounts.collateral_custody.decimals, &collateral_prices.max())?;
    let (side, entry, old_size) = (position.side, position.price, position.size_usd);
    let borrow_still_owed = position
        .borrow_fee_usd(&ctx.accounts.collateral_custody)?
        .checked_sub(q.borrow_fee_usd)
        .ok_or(PerpoolError::MathOverflow)?;
    let funding_still_owed = position.funding_after(&ctx.accounts.custody, &q)?;

    perpool.transfer_from_vault(
        ctx.accounts.collateral_custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        q.payout_amount,
    )?;
    let collateral_custody_key = ctx.accounts.collateral_custody.key();
    {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        cc.settle_close(q.collateral_amount, q.locked_amount, q.payout_amount, fee_amount)?;
        let covered = cc.cover_bad_debt(q.bad_debt_usd, &collateral_prices)?;
        if q.bad_debt_usd > 0 {
            emit!(InsuranceFundChanged { custody: collateral_custody_key, inflow: 0, outflow: covered, balance: cc.insurance.balance, bad_debt_usd: q.bad_debt_usd });
        }
        cc.refresh_borrow_rate()?;
    }
    {
        let c: &mut Custody = &mut ctx.accounts.custody;
        c.remove_from_book(side, entry, old_size, old_size - q.size_usd, q.collateral_usd, full)?;
        c.stats.volume_close_position_usd = c.stats.volume_close_position_usd.saturating_add(q.size_usd);
        c.stats.fees_close_position_usd = c.stats.fees_close_position_usd.saturating_add(q.close_fee_usd);
        c.stats.fees_borrow_usd = c.stats.fees_borrow_usd.saturating_add(q.borrow_fee_usd);
        c.refresh_funding_rate(ctx.accounts.pool.aum_usd)?;
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);

    let index = ctx.accounts.collateral_custody.borrow_state.cumulative_interest;
    let funding_index = ctx.accounts.custody.funding_index(side);
    let position = &mut ctx.accounts.position;
    emit!(PositionClosed {
        owner: position.owner,
        position: position.key(),
        side,
        exit_price: q.exit_price,
        size_usd: q.size_usd,
        profit_usd: q.profit_usd,
        loss_usd: q.loss_usd,
        fee_usd: q.close_fee_usd,
        borrow_fee_usd: q.borrow_fee_usd,
        payout_amount: q.payout_amount,
        remaining_size_usd: old_size - q.size_usd,
        funding_paid_usd: q.funding_paid_usd,
        funding_received_usd: q.funding_received_usd,
        bad_debt_usd: q.bad_debt_usd,
    });
    if full {
        position.close(ctx.accounts.owner.to_account_info())?;
    } else {
        position.size_usd = old_size - q.size_usd;
        position.collateral_usd = position.collateral_usd.checked_sub(q.collateral_usd).ok_or(PerpoolError::MathOverflow)?;
        position.collateral_amount = position.collateral_amount.checked_sub(q.collateral_amount).ok_or(PerpoolError::MathOverflow)?;
        position.locked_amount = position.locked_amount.checked_sub(q.locked_amount).ok_or(PerpoolError::MathOverflow)?;
        position.borrow_index_snapshot = index;
        position.unpaid_borrow_fee_usd = borrow_still_owed;
        position.funding_index_snapshot = funding_index;
        position.unpaid_funding_usd = funding_still_owed;
        position.update_time = now;
    }
    Ok(())
}
