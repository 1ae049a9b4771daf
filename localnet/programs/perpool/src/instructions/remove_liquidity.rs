use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::LiquidityRemoved,
    math::{self, Valuation},
    state::{Custody, Perpool, Pool, PricedCustody},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct RemoveLiquidityParams {
    pub lp_amount_in: u64,
    pub min_amount_out: u64,
}

/// Burns LP tokens for one pool token. Remaining accounts: every custody, then their oracles.
#[derive(Accounts)]
pub struct RemoveLiquidity<'info> {
    pub owner: Signer<'info>,

    #[account(
        mut,
        constraint = receiving_account.mint == custody.mint @ PerpoolError::InvalidTokenAccount,
        constraint = receiving_account.owner != transfer_authority.key() @ PerpoolError::ReceivingAccountIsVault
    )]
    pub receiving_account: Box<Account<'info, TokenAccount>>,

    #[account(mut, constraint = lp_token_account.mint == lp_token_mint.key() @ PerpoolError::InvalidTokenAccount)]
    pub lp_token_account: Box<Account<'info, TokenAccount>>,

    /// CHECK: transfer authority PDA, signs for the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(mut, seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(mut, address = custody.token_account @ PerpoolError::InvalidTokenAccount)]
    pub custody_token_account: Box<Account<'info, TokenAccount>>,

    #[account(mut, seeds = [Pool::LP_MINT_SEED, pool.key().as_ref()], bump = pool.lp_mint_bump)]
    pub lp_token_mint: Box<Account<'info, Mint>>,

    pub token_program: Program<'info, Token>,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct RemoveLiquidityQuote {
    pub amount_out: u64,
    pub fee_amount: u64,
    pub withdraw_usd: u64,
    pub aum_usd: u64,
    pub fee_bps: u64,
}

pub fn quote_remove_liquidity(
    pool: &Pool,
    custody_key: &Pubkey,
    custodies: &[PricedCustody],
    lp_supply: u64,
    lp_amount_in: u64,
) -> Result<RemoveLiquidityQuote> {
    require!(lp_amount_in > 0, PerpoolError::ZeroAmount);
    let index = pool.custody_index(custody_key).ok_or(PerpoolError::CustodyNotInPool)?;
    let entry = &custodies[index];
    let custody = &entry.custody;
    custody.require_tokens()?;
    // Pool valued low, tokens paid at the high price: never pays more than the LP share.
    let aum_usd = Pool::aum_usd(custodies, Valuation::Low)?;
    require!(aum_usd > 0, PerpoolError::EmptyPool);
    let withdraw_usd = math::usd_for_lp(lp_amount_in, aum_usd, lp_supply)?;
    let gross = math::usd_to_token_floor(withdraw_usd, custody.decimals, &entry.prices.max())?;
    let value_usd = math::custody_value_usd(custody.assets.owned, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::Low)?;
    let fee_bps = custody.liquidity_fee_bps(value_usd, aum_usd, withdraw_usd, false)?;
    let fee_amount = math::fee_tokens(gross, fee_bps)?;
    let amount_out = gross.checked_sub(fee_amount).ok_or(PerpoolError::MathOverflow)?;
    require!(amount_out > 0, PerpoolError::ZeroAmount);
    require!(gross <= custody.available()?, PerpoolError::InsufficientLiquidity);
    check_min_ratio(custody, entry, aum_usd, withdraw_usd)?;
    Ok(RemoveLiquidityQuote { amount_out, fee_amount, withdraw_usd, aum_usd, fee_bps })
}

/// A withdrawal may not push a custody below its minimum share (unless it moves toward it).
fn check_min_ratio(custody: &Custody, entry: &PricedCustody, aum_usd: u64, withdraw_usd: u64) -> Result<()> {
    let value = math::custody_value_usd(custody.assets.owned, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::Low)?;
    let old_ratio = math::mul_div_floor_u64(value, math::BPS_DENOMINATOR, aum_usd)?;
    let new_value = value.saturating_sub(withdraw_usd);
    let new_aum = aum_usd.saturating_sub(withdraw_usd);
    if new_aum == 0 {
        return Ok(());
    }
    let new_ratio = math::mul_div_floor_u64(new_value, math::BPS_DENOMINATOR, new_aum)?;
    require!(
        new_ratio >= custody.ratios.min_bps || new_ratio >= old_ratio,
        PerpoolError::TokenRatioOutOfBounds
    );
    Ok(())
}

pub fn handle_remove_liquidity<'info>(
    ctx: Context<'_, '_, 'info, 'info, RemoveLiquidity<'info>>,
    params: RemoveLiquidityParams,
) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_remove_liquidity)?;
    let now = Clock::get()?.unix_timestamp;
    let custody = &mut ctx.accounts.custody;
    custody.prices(&ctx.accounts.custody_oracle, now)?;
    custody.accrue_borrow(now)?;
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, now)?;
    let quote = quote_remove_liquidity(&ctx.accounts.pool, &custody.key(), &custodies, ctx.accounts.lp_token_mint.supply, params.lp_amount_in)?;
    require!(quote.amount_out >= params.min_amount_out, PerpoolError::SlippageExceeded);

    perpool.burn_lp(
        ctx.accounts.lp_token_mint.to_account_info(),
        ctx.accounts.lp_token_account.to_account_info(),
        ctx.accounts.owner.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        params.lp_amount_in,
    )?;
    perpool.transfer_from_vault(
        ctx.accounts.custody_token_account.to_account_info(),
        ctx.accounts.receiving_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        quote.amount_out,
    )?;

    let gross = quote.amount_out.checked_add(quote.fee_amount).ok_or(PerpoolError::MathOverflow)?;
    // The fee stays in the pool for the remaining LPs: only what is paid out leaves `owned`.
    custody.assets.owned = custody.assets.owned.checked_sub(quote.amount_out).ok_or(PerpoolError::InsufficientLiquidity)?;
    let fee_usd = math::mul_div_ceil_u64(quote.withdraw_usd, quote.fee_amount, gross)?;
    custody.stats.volume_remove_liquidity_usd = custody.stats.volume_remove_liquidity_usd.saturating_add(quote.withdraw_usd);
    custody.stats.fees_remove_liquidity_usd = custody.stats.fees_remove_liquidity_usd.saturating_add(fee_usd);
    let pool = &mut ctx.accounts.pool;
    pool.aum_usd = quote.aum_usd.saturating_sub(quote.withdraw_usd).saturating_add(fee_usd);
    pool.aum_updated_at = now;
    emit!(LiquidityRemoved {
        owner: ctx.accounts.owner.key(),
        pool: pool.key(),
        custody: custody.key(),
        lp_amount: params.lp_amount_in,
        amount_out: quote.amount_out,
        fee_amount: quote.fee_amount,
        aum_usd: pool.aum_usd,
    });
    Ok(())
}
