use anchor_lang::prelude::*;

use crate::instructions::{remove_liquidity::{quote_remove_liquidity, RemoveLiquidityQuote}, views::accounts::CustodyView};

/// Quote of `remove_liquidity` (remaining accounts: custodies, then oracles).
pub fn handle_get_remove_liquidity_amount_and_fee<'info>(
    ctx: Context<'_, '_, 'info, 'info, CustodyView<'info>>,
    lp_amount_in: u64,
) -> Result<RemoveLiquidityQuote> {
    let now = Clock::get()?.unix_timestamp;
    ctx.accounts.custody.prices(&ctx.accounts.custody_oracle, now)?;
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, now)?;
    quote_remove_liquidity(&ctx.accounts.pool, &ctx.accounts.custody.key(), &custodies, ctx.accounts.lp_token_mint.supply, lp_amount_in)
}
