use anchor_lang::prelude::*;

use crate::instructions::views::accounts::CustodyView;

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct OraclePriceView {
    pub price: u64,
    pub exponent: i32,
    pub ema_price: u64,
    /// Spot price as USD per whole token with 9 decimals (rounded down).
    pub price_usd_e9: u64,
}

/// The custody's validated oracle price.
pub fn handle_get_oracle_price(ctx: Context<CustodyView>) -> Result<OraclePriceView> {
    let prices = ctx.accounts.custody.prices(&ctx.accounts.custody_oracle, Clock::get()?.unix_timestamp)?;
    Ok(OraclePriceView {
        price: prices.spot.price,
        exponent: prices.spot.exponent,
        ema_price: prices.ema.price,
        price_usd_e9: prices.spot.to_price_9dp_floor()?,
    })
}
