use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    instructions::{swap::{quote_swap, SwapQuote}, views::accounts::PairView},
};

/// Quote of `swap` from `custody` (receiving) to `other_custody` (dispensing).
pub fn handle_get_swap_amount_and_fees(ctx: Context<PairView>, amount_in: u64) -> Result<SwapQuote> {
    require_keys_neq!(ctx.accounts.custody.key(), ctx.accounts.other_custody.key(), PerpoolError::SameCustody);
    let now = Clock::get()?.unix_timestamp;
    let prices = ctx.accounts.custody.prices(&ctx.accounts.custody_oracle, now)?;
    let other_prices = ctx.accounts.other_custody.prices(&ctx.accounts.other_custody_oracle, now)?;
    quote_swap(&ctx.accounts.custody, &prices, &ctx.accounts.other_custody, &other_prices, amount_in)
}
