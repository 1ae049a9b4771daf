use anchor_lang::prelude::*;
use anchor_spl::token::{Mint, Token, TokenAccount};

use crate::{
    error::PerpoolError,
    events::AdminAction,
    state::{
        Assets, BorrowRateParams, BorrowRateState, Custody, CustomOracle, Fees, FundingParams, FundingState, InsuranceFund,
        LiquidationParams, Multisig, OracleParams, OracleType, PayoffParams, Perpool, Pool, PositionTotals, PricingParams,
        SlippageParams, Stats, TokenRatios, MAX_CUSTODIES,
    },
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct CustodyConfig {
    pub oracle: OracleParams,
    pub pricing: PricingParams,
    pub fees: Fees,
    pub borrow_rate: BorrowRateParams,
    pub ratios: TokenRatios,
    pub liquidation: LiquidationParams,
    pub funding: FundingParams,
    pub slippage: SlippageParams,
    /// Fixed at creation: `set_custody_config` must repeat it unchanged.
    pub payoff: PayoffParams,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct AddCustodyParams {
    pub is_stable: bool,
    pub config: CustodyConfig,
}

/// Adds a token to a pool: its custody, vault and custom oracle account.
#[derive(Accounts)]
pub struct AddCustody<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    /// CHECK: transfer authority PDA, owner of the vault.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump = perpool.transfer_authority_bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(mut, seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(
        init,
        payer = admin,
        space = 8 + Custody::INIT_SPACE,
        seeds = [Custody::SEED, pool.key().as_ref(), custody_token_mint.key().as_ref()],
        bump
    )]
    pub custody: Box<Account<'info, Custody>>,

    #[account(
        init,
        payer = admin,
        token::mint = custody_token_mint,
        token::authority = transfer_authority,
        seeds = [Custody::TOKEN_ACCOUNT_SEED, pool.key().as_ref(), custody_token_mint.key().as_ref()],
        bump
    )]
    pub custody_token_account: Box<Account<'info, TokenAccount>>,

    #[account(
        init,
        payer = admin,
        space = 8 + CustomOracle::INIT_SPACE,
        seeds = [CustomOracle::SEED, pool.key().as_ref(), custody_token_mint.key().as_ref()],
        bump
    )]
    pub custom_oracle: Box<Account<'info, CustomOracle>>,

    pub custody_token_mint: Box<Account<'info, Mint>>,

    pub system_program: Program<'info, System>,
    pub token_program: Program<'info, Token>,
    pub rent: Sysvar<'info, Rent>,
}

pub fn handle_add_custody(ctx: Context<AddCustody>, params: AddCustodyParams) -> Result<()> {
    let hash = Multisig::instruction_hash(
        "add_custody",
        &[ctx.accounts.pool.key(), ctx.accounts.custody_token_mint.key()],
        &params.try_to_vec()?,
    );
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    if params.config.oracle.oracle_type == OracleType::Custom {
        require_keys_eq!(
            params.config.oracle.oracle_account,
            ctx.accounts.custom_oracle.key(),
            PerpoolError::InvalidOracleConfig
        );
    }
    let pool = &mut ctx.accounts.pool;
    require!(pool.custodies.len() < MAX_CUSTODIES, PerpoolError::TooManyCustodies);
    pool.custodies.push(ctx.accounts.custody.key());

    let custody = &mut ctx.accounts.custody;
    custody.pool = pool.key();
    custody.mint = ctx.accounts.custody_token_mint.key();
    custody.token_account = ctx.accounts.custody_token_account.key();
    custody.decimals = ctx.accounts.custody_token_mint.decimals;
    custody.is_stable = params.is_stable;
    custody.oracle = params.config.oracle;
    custody.pricing = params.config.pricing;
    custody.fees = params.config.fees;
    custody.borrow_rate = params.config.borrow_rate;
    custody.borrow_state = BorrowRateState { current_rate: 0, cumulative_interest: 0, last_update: Clock::get()?.unix_timestamp };
    custody.assets = Assets::default();
    custody.stats = Stats::default();
    custody.longs = PositionTotals::default();
    custody.shorts = PositionTotals::default();
    custody.ratios = params.config.ratios;
    custody.liquidation = params.config.liquidation;
    custody.funding = params.config.funding;
    custody.slippage = params.config.slippage;
    custody.payoff = params.config.payoff;
    custody.funding_state = FundingState { last_update: Clock::get()?.unix_timestamp, ..FundingState::default() };
    custody.insurance = InsuranceFund::default();
    custody.bump = ctx.bumps.custody;
    custody.token_account_bump = ctx.bumps.custody_token_account;
    custody.validate_config()?;
    ctx.accounts.custom_oracle.bump = ctx.bumps.custom_oracle;
    emit!(AdminAction { instruction: "add_custody".into(), target: custody.key() });
    Ok(())
}
