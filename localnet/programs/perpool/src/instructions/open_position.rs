use anchor_lang::prelude::*;
use anchor_spl::token::{Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::PositionOpened,
    math,
    state::{load_position_custodies, sync_same_custody, meets_min_leverage, size_over_entry, Custody, Perpool, Pool, Position, Side},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct OpenPositionParams {
    /// Worst acceptable entry price (USD per token, 9 decimals): a ceiling for longs, a floor
    /// for shorts.
    pub price: u64,
    pub collateral_amount: u64,
    pub size_usd: u64,
    pub side: Side,
}

#[derive(Accounts)]
#[instruction(params: OpenPositionParams)]
pub struct OpenPosition<'info> {
    #[account(mut)]
    pub owner: Signer<'info>,

    #[account(mut, constraint = funding_account.mint == collateral_custody.mint @ PerpoolError::InvalidTokenAccount)]
    pub funding_account: Box<Account<'info, TokenAccount>>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(
        init,
        payer = owner,
        space = 8 + Position::INIT_SPACE,
        seeds = [Position::SEED, owner.key().as_ref(), pool.key().as_ref(), custody.key().as_ref(), params.side.seed()],
        bump
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

    pub system_program: Program<'info, System>,
    pub token_program: Program<'info, Token>,
}

/// Longs post collateral in the traded token; shorts in a stable custody against a
/// non-stable one.
pub fn check_side(side: Side, custody: &Account<Custody>, collateral_custody: &Account<Custody>) -> Result<()> {
    if custody.is_synthetic() {
        // Payoff markets hold no tokens: both sides post a stable.
        require!(
            collateral_custody.is_stable && !collateral_custody.is_synthetic(),
            PerpoolError::InvalidPayoffCollateral
        );
        return Ok(());
    }
    match side {
        Side::Long => require_keys_eq!(custody.key(), collateral_custody.key(), PerpoolError::InvalidLongCollateral),
        Side::Short => require!(
            collateral_custody.is_stable && !custody.is_stable,
            PerpoolError::InvalidShortCollateral
        ),
    }
    Ok(())
}

pub fn handle_open_position(ctx: Context<OpenPosition>, params: OpenPositionParams) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_open_position)?;
    check_side(params.side, &ctx.accounts.custody, &ctx.accounts.collateral_custody)?;
    let now = Clock::get()?.unix_timestamp;
    let (prices, collateral_prices, same) = load_position_custodies(
        &mut ctx.accounts.custody,
        &ctx.accounts.custody_oracle,
        &mut ctx.accounts.collateral_custody,
        &ctx.accounts.collateral_custody_oracle,
        now,
        ctx.accounts.pool.aum_usd,
    )?;

    let quote = Position::quote_open(
        params.side,
        &ctx.accounts.custody,
        &prices,
        &ctx.accounts.collateral_custody,
        &collateral_prices,
        params.collateral_amount,
        params.size_usd,
        ctx.accounts.pool.aum_usd,
    )?;
    match params.side {
        Side::Long => require!(quote.entry_price <= params.price, PerpoolError::PriceLimitExceeded),
        Side::Short => require!(quote.entry_price >= params.price, PerpoolError::PriceLimitExceeded),
    }
    let pricing = &ctx.accounts.custody.pricing;
    require!(
        meets_min_leverage(params.size_usd, quote.collateral_usd, pricing.min_initial_leverage)?,
        PerpoolError::LeverageTooLow
    );
    require!(quote.leverage_bps <= pricing.max_initial_leverage, PerpoolError::LeverageTooHigh);
    require!(
        pricing.max_position_size_usd == 0 || params.size_usd <= pricing.max_position_size_usd,
        PerpoolError::PositionTooLarge
    );

    perpool.transfer_to_vault(
        ctx.accounts.funding_account.to_account_info(),
        ctx.accounts.collateral_custody_token_account.to_account_info(),
        ctx.accounts.owner.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        params.collateral_amount,
    )?;

    // Collateral side: tokens in, fee to LPs/protocol, tokens locked for the position's profit.
    {
        let cc: &mut Custody = if same { &mut ctx.accounts.custody } else { &mut ctx.accounts.collateral_custody };
        let collateral_in = params.collateral_amount - quote.fee_amount;
        cc.assets.collateral = cc.assets.collateral.checked_add(collateral_in).ok_or(PerpoolError::MathOverflow)?;
        cc.collect_fee(quote.fee_amount)?;
        cc.assets.locked = cc.assets.locked.checked_add(quote.locked_amount).ok_or(PerpoolError::MathOverflow)?;
        let max_locked = math::mul_div_floor_u64(cc.assets.owned, cc.pricing.max_utilization_bps, math::BPS_DENOMINATOR)?;
        require!(cc.assets.locked <= max_locked, PerpoolError::MaxUtilizationExceeded);
        cc.refresh_borrow_rate()?;
    }
    // Traded side: open interest and the book totals AUM values.
    {
        let c: &mut Custody = &mut ctx.accounts.custody;
        let cap = match params.side {
            Side::Long => c.pricing.max_long_open_interest_usd,
            Side::Short => c.pricing.max_short_open_interest_usd,
        };
        let totals = c.totals_mut(params.side);
        totals.open_positions = totals.open_positions.checked_add(1).ok_or(PerpoolError::MathOverflow)?;
        totals.size_usd = totals.size_usd.checked_add(params.size_usd).ok_or(PerpoolError::MathOverflow)?;
        totals.collateral_usd = totals.collateral_usd.checked_add(quote.collateral_usd).ok_or(PerpoolError::MathOverflow)?;
        totals.size_over_entry = totals
            .size_over_entry
            .checked_add(size_over_entry(params.size_usd, quote.entry_price)?)
            .ok_or(PerpoolError::MathOverflow)?;
        require!(cap == 0 || totals.size_usd <= cap, PerpoolError::OpenInterestCapExceeded);
        c.stats.volume_open_position_usd = c.stats.volume_open_position_usd.saturating_add(params.size_usd);
        c.stats.fees_open_position_usd = c.stats.fees_open_position_usd.saturating_add(quote.fee_usd);
        c.refresh_funding_rate(ctx.accounts.pool.aum_usd)?;
    }
    sync_same_custody(&ctx.accounts.custody, &mut ctx.accounts.collateral_custody, same);

    let position = &mut ctx.accounts.position;
    position.owner = ctx.accounts.owner.key();
    position.pool = ctx.accounts.pool.key();
    position.custody = ctx.accounts.custody.key();
    position.collateral_custody = ctx.accounts.collateral_custody.key();
    position.side = params.side;
    position.open_time = now;
    position.update_time = now;
    position.price = quote.entry_price;
    position.size_usd = params.size_usd;
    position.collateral_usd = quote.collateral_usd;
    position.collateral_amount = params.collateral_amount - quote.fee_amount;
    position.locked_amount = quote.locked_amount;
    position.borrow_index_snapshot = ctx.accounts.collateral_custody.borrow_state.cumulative_interest;
    position.unpaid_borrow_fee_usd = 0;
    position.funding_index_snapshot = ctx.accounts.custody.funding_index(params.side);
    position.unpaid_funding_usd = 0;
    position.bump = ctx.bumps.position;
    emit!(PositionOpened {
        owner: position.owner,
        position: position.key(),
        custody: position.custody,
        collateral_custody: position.collateral_custody,
        side: params.side,
        price: quote.entry_price,
        size_usd: params.size_usd,
        collateral_usd: quote.collateral_usd,
        collateral_amount: position.collateral_amount,
        fee_usd: quote.fee_usd,
        locked_amount: quote.locked_amount,
    });
    Ok(())
}
