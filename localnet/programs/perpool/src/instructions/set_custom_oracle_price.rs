use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    events::OraclePriceSet,
    state::{exponent_in_range, Custody, CustomOracle, Perpool, Pool},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct SetCustomOraclePriceParams {
    pub price: u64,
    pub expo: i32,
    pub conf: u64,
    pub ema: u64,
    pub publish_time: i64,
}

#[derive(Accounts)]
pub struct SetCustomOraclePrice<'info> {
    pub oracle_authority: Signer<'info>,

    #[account(seeds = [Perpool::SEED], bump = perpool.bump, has_one = oracle_authority @ PerpoolError::NotOracleAuthority)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(has_one = pool, seeds = [Custody::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = custody.bump)]
    pub custody: Box<Account<'info, Custody>>,

    #[account(mut, seeds = [CustomOracle::SEED, pool.key().as_ref(), custody.mint.as_ref()], bump = oracle.bump)]
    pub oracle: Box<Account<'info, CustomOracle>>,
}

pub fn handle_set_custom_oracle_price(ctx: Context<SetCustomOraclePrice>, params: SetCustomOraclePriceParams) -> Result<()> {
    // Only prices a reader accepts (positive, and within i64 as Pyth reports them): a post no
    // instruction could read would stop the feed until the next one.
    require!(params.price > 0 && params.ema > 0, PerpoolError::InvalidOraclePrice);
    require!(
        i64::try_from(params.price).is_ok() && i64::try_from(params.ema).is_ok(),
        PerpoolError::InvalidOraclePrice
    );
    require!(exponent_in_range(params.expo), PerpoolError::InvalidOraclePrice);
    let now = Clock::get()?.unix_timestamp;
    let oracle = &mut ctx.accounts.oracle;
    // Strictly increasing and never ahead of the chain clock: a future time would freeze the feed.
    require!(
        params.publish_time > oracle.publish_time && params.publish_time <= now,
        PerpoolError::InvalidPublishTime
    );
    oracle.price = params.price;
    oracle.expo = params.expo;
    oracle.conf = params.conf;
    oracle.ema = params.ema;
    oracle.publish_time = params.publish_time;
    emit!(OraclePriceSet {
        oracle: oracle.key(),
        price: params.price,
        expo: params.expo,
        conf: params.conf,
        ema: params.ema,
        publish_time: params.publish_time,
    });
    Ok(())
}
