use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::LiquidityAdded,
    math::{self, Valuation},
    state::{Custody, Perpool, Pool, PricedCustody},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct AddLiquidityParams {
    pub amount_in: u64,
    pub min_lp_amount_out: u64,
}

/// Deposits a pool token for LP tokens. Remaining accounts: every custody of the pool, then
/// their oracles (pool order).
#[derive(Accounts)]
pub struct AddLiquidity<'info> {
    pub owner: Signer<'info>,

    #[account(mut, constraint = funding_account.mint == custody.mint @ PerpoolError::InvalidTokenAccount)]
    pub funding_account: Box<Account<'info, TokenAccount>>,

    #[account(mut, constraint = lp_token_account.mint == lp_token_mint.key() @ PerpoolError::InvalidTokenAccount)]
    pub lp_token_account: Box<Account<'info, TokenAccount>>,

    /// CHECK: transfer authority PDA, the LP mint's authority.
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

/// LP tokens minted and fee taken for a deposit; shared with the quote view.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct AddLiquidityQuote {
    pub lp_amount: u64,
    pub fee_amount: u64,
    pub deposit_usd: u64,
    pub aum_usd: u64,
    /// LP fee rate applied (bps), see `Custody::liquidity_fee_bps`.
    pub fee_bps: u64,
}

pub fn quote_add_liquidity(
    pool: &Pool,
    custody_key: &Pubkey,
    custodies: &[PricedCustody],
    lp_supply: u64,
    amount_in: u64,
) -> Result<AddLiquidityQuote> {
    require!(amount_in > 0, PerpoolError::ZeroAmount);
    let index = pool.custody_index(custody_key).ok_or(PerpoolError::CustodyNotInPool)?;
    let entry = &custodies[index];
    let custody = &entry.custody;
    custody.require_tokens()?;
    let gross_usd = math::custody_value_usd(amount_in, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::Low)?;
    require!(gross_usd >= custody.pricing.min_liquidity_deposit_usd, PerpoolError::DepositTooSmall);
    let aum_usd = Pool::aum_usd(custodies, Valuation::High)?;
    let value_usd = math::custody_value_usd(custody.assets.owned, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::High)?;
    let fee_bps = custody.liquidity_fee_bps(value_usd, aum_usd, gross_usd, true)?;
    let fee_amount = math::fee_tokens(amount_in, fee_bps)?;
    let net = amount_in.checked_sub(fee_amount).ok_or(PerpoolError::MathOverflow)?;
    // Deposit valued low, pool valued high: never mints more than the deposit is worth.
    let deposit_usd = math::custody_value_usd(net, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::Low)?;
    // The first deposit pays for the locked LP (math::LOCKED_LP_SUPPLY): it must be worth more.
    require!(lp_supply > 0 || deposit_usd > math::LOCKED_LP_SUPPLY, PerpoolError::DepositTooSmall);
    require!(lp_supply == 0 || aum_usd > 0, PerpoolError::EmptyPool);
    // The fee stays in the pool for the other LPs: the new tokens are priced against the pool
    // including it (valued high), so the depositor gets none of it back.
    let fee_usd = math::custody_value_usd(fee_amount, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::High)?;
    let lp_amount = math::lp_to_mint_after_fee(deposit_usd, fee_usd, aum_usd, lp_supply)?;
    require!(lp_amount > 0, PerpoolError::ZeroAmount);
    check_max_ratio(custody, entry, aum_usd, deposit_usd)?;
    Ok(AddLiquidityQuote { lp_amount, fee_amount, deposit_usd, aum_usd, fee_bps })
}

/// A deposit may not push a custody above its maximum share of the pool (moving back toward
/// the band is always allowed).
fn check_max_ratio(custody: &Custody, entry: &PricedCustody, aum_usd: u64, deposit_usd: u64) -> Result<()> {
    if aum_usd == 0 {
        return Ok(());
    }
    let value = math::custody_value_usd(custody.assets.owned, custody.decimals, &entry.prices.spot, &entry.prices.ema, Valuation::High)?;
    let old_ratio = math::mul_div_floor_u64(value, math::BPS_DENOMINATOR, aum_usd)?;
    let new_value = value.checked_add(deposit_usd).ok_or(PerpoolError::MathOverflow)?;
    let new_aum = aum_usd.checked_add(deposit_usd).ok_or(PerpoolError::MathOverflow)?;
    let new_ratio = math::mul_div_floor_u64(new_value, math::BPS_DENOMINATOR, new_aum)?;
    require!(
        new_ratio <= custody.ratios.max_bps || new_ratio <= old_ratio,
        PerpoolError::TokenRatioOutOfBounds
    );
    Ok(())
}

pub fn handle_add_liquidity<'info>(
    ctx: Context<'_, '_, 'info, 'info, AddLiquidity<'info>>,
    params: AddLiquidityParams,
) -> Result<()> {
    let perpool = &ctx.accounts.perpool;
    perpool.check(perpool.permissions.allow_add_liquidity)?;
    let now = Clock::get()?.unix_timestamp;
    let custody = &mut ctx.accounts.custody;
    // The oracle named in the accounts must be the custody's (the same one AUM reads).
    custody.prices(&ctx.accounts.custody_oracle, now)?;
    custody.accrue_borrow(now)?;
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, now)?;
    let quote = quote_add_liquidity(&ctx.accounts.pool, &custody.key(), &custodies, ctx.accounts.lp_token_mint.supply, params.amount_in)?;
    require!(quote.lp_amount >= params.min_lp_amount_out, PerpoolError::SlippageExceeded);

    perpool.transfer_to_vault(
        ctx.accounts.funding_account.to_account_info(),
        ctx.accounts.custody_token_account.to_account_info(),
        ctx.accounts.owner.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        params.amount_in,
    )?;
    perpool.mint_lp(
        ctx.accounts.lp_token_mint.to_account_info(),
        ctx.accounts.lp_token_account.to_account_info(),
        ctx.accounts.transfer_authority.to_account_info(),
        ctx.accounts.token_program.to_account_info(),
        quote.lp_amount,
    )?;

    let net = params.amount_in.checked_sub(quote.fee_amount).ok_or(PerpoolError::MathOverflow)?;
    // The fee stays in the pool for the other LPs: the whole deposit becomes owned.
    custody.assets.owned = custody.assets.owned.checked_add(params.amount_in).ok_or(PerpoolError::MathOverflow)?;
    let fee_usd = math::mul_div_floor_u64(quote.deposit_usd, quote.fee_amount, net.max(1))?;
    custody.stats.volume_add_liquidity_usd = custody.stats.volume_add_liquidity_usd.saturating_add(quote.deposit_usd);
    custody.stats.fees_add_liquidity_usd = custody.stats.fees_add_liquidity_usd.saturating_add(fee_usd);
    let pool = &mut ctx.accounts.pool;
    // The fee stays in the pool, so it counts toward the recorded AUM too.
    pool.aum_usd = quote.aum_usd.checked_add(quote.deposit_usd).and_then(|a| a.checked_add(fee_usd)).ok_or(PerpoolError::MathOverflow)?;
    pool.aum_updated_at = now;
    emit!(LiquidityAdded {
        owner: ctx.accounts.owner.key(),
        pool: pool.key(),
        custody: custody.key(),
        amount_in: params.amount_in,
        fee_amount: quote.fee_amount,
        lp_amount: quote.lp_amount,
        aum_usd: pool.aum_usd,
    });
    Ok(())
}
