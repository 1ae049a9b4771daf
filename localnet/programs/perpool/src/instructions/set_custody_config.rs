use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    events::AdminAction,
    instructions::add_custody::CustodyConfig,
    state::{Custody, Multisig, OracleType, Pool},
};

#[derive(Accounts)]
pub struct SetCustodyConfig<'info> {
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(mut, has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,
}

pub fn handle_set_custody_config(ctx: Context<SetCustodyConfig>, config: CustodyConfig) -> Result<()> {
    let hash = Multisig::instruction_hash("set_custody_config", &[ctx.accounts.custody.key()], &config.try_to_vec()?);
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    let custody = &mut ctx.accounts.custody;
    if config.oracle.oracle_type == OracleType::Custom {
        let (expected, _) = Pubkey::find_program_address(
            &[crate::state::CustomOracle::SEED, custody.pool.as_ref(), custody.mint.as_ref()],
            &crate::ID,
        );
        require_keys_eq!(config.oracle.oracle_account, expected, PerpoolError::InvalidOracleConfig);
    }
    require!(config.payoff == custody.payoff, PerpoolError::InvalidPayoffConfig);
    // Interest and funding so far accrue at the old parameters.
    let now = Clock::get()?.unix_timestamp;
    custody.accrue_borrow(now)?;
    custody.accrue_funding(now, ctx.accounts.pool.aum_usd)?;
    custody.oracle = config.oracle;
    custody.pricing = config.pricing;
    custody.fees = config.fees;
    custody.borrow_rate = config.borrow_rate;
    custody.ratios = config.ratios;
    custody.liquidation = config.liquidation;
    custody.funding = config.funding;
    custody.slippage = config.slippage;
    custody.validate_config()?;
    emit!(AdminAction { instruction: "set_custody_config".into(), target: custody.key() });
    Ok(())
}
