use anchor_lang::prelude::*;

use crate::{instructions::views::accounts::PoolView, math::{self, Valuation}, state::Pool};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, Debug, Default)]
pub struct AumView {
    pub spot_usd: u64,
    /// AUM LP mints are priced at.
    pub high_usd: u64,
    /// AUM LP burns are priced at.
    pub low_usd: u64,
    pub lp_supply: u64,
    /// USD per LP token (6 decimals) at spot.
    pub lp_price_usd: u64,
}

/// Pool value (remaining accounts: custodies, then oracles).
pub fn handle_get_assets_under_management<'info>(ctx: Context<'_, '_, 'info, 'info, PoolView<'info>>) -> Result<AumView> {
    let custodies = ctx.accounts.pool.load_custodies(ctx.remaining_accounts, Clock::get()?.unix_timestamp)?;
    let spot_usd = Pool::aum_usd(&custodies, Valuation::Spot)?;
    let lp_supply = ctx.accounts.lp_token_mint.supply;
    Ok(AumView {
        spot_usd,
        high_usd: Pool::aum_usd(&custodies, Valuation::High)?,
        low_usd: Pool::aum_usd(&custodies, Valuation::Low)?,
        lp_supply,
        lp_price_usd: math::lp_token_price_usd(spot_usd, lp_supply)?,
    })
}
