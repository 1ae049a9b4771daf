use anchor_lang::prelude::*;

use crate::{
    instructions::{open_position::check_side, views::accounts::PairView},
    state::{OpenQuote, Position, Side},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug)]
pub struct GetEntryPriceAndFeeParams {
    pub collateral_amount: u64,
    pub size_usd: u64,
    pub side: Side,
}

/// Quote of `open_position` (`custody` traded, `other_custody` collateral).
pub fn handle_get_entry_price_and_fee(ctx: Context<PairView>, params: GetEntryPriceAndFeeParams) -> Result<OpenQuote> {
    check_side(params.side, &ctx.accounts.custody, &ctx.accounts.other_custody)?;
    let now = Clock::get()?.unix_timestamp;
    let prices = ctx.accounts.custody.prices(&ctx.accounts.custody_oracle, now)?;
    let collateral_prices = ctx.accounts.other_custody.prices(&ctx.accounts.other_custody_oracle, now)?;
    Position::quote_open(
        params.side,
        &ctx.accounts.custody,
        &prices,
        &ctx.accounts.other_custody,
        &collateral_prices,
        params.collateral_amount,
        params.size_usd,
        ctx.accounts.pool.aum_usd,
    )
}
