use anchor_lang::prelude::*;

use crate::instructions::{add_liquidity::{quote_add_liquidity, AddLiquidityQuote}, views::accounts::CustodyView};

/// Quote of `add_liquidity` (remaining accounts: custodies, then oracles).
pub fn handle_get_add_liquidity_amount_and_fee<'info>(
    ctx: Context<'_, '_, 'info, 'info, CustodyView<'info>>,
    amount_in: u64,
) -> Result<AddLiquidityQuote> {
    let now = Clock::get()?.unix_timestamp;
    ctx.accounts.custody.prices(&ctx.accounts.custody_oracle, now)?;
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, now)?;
    quote_add_liquidity(&ctx.accounts.pool, &ctx.accounts.custody.key(), &custodies, ctx.accounts.lp_token_mint.supply, amount_in)
}
