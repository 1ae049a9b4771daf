use anchor_lang::prelude::*;

use crate::state::{Custody, Perpool, Pool, Position, Prices};

/// Accounts of the views over one position.
#[derive(Accounts)]
pub struct PositionView<'info> {
    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(has_one = pool, has_one = custody, has_one = collateral_custody)]
    pub position: Box<Account<'info, Position>>,

    #[account(has_one = pool)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(has_one = pool)]
    pub collateral_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the collateral custody's oracle configuration when read.
    pub collateral_custody_oracle: UncheckedAccount<'info>,
}

/// Position, its custodies with borrow accrued to now (on copies) and prices, as the
/// instructions would see them.
pub struct PositionState {
    pub position: Position,
    pub custody: Custody,
    pub prices: Prices,
    pub collateral_custody: Custody,
    pub collateral_prices: Prices,
    pub pool_aum_usd: u64,
}

impl PositionView<'_> {
    pub fn load(&self) -> Result<PositionState> {
        let now = Clock::get()?.unix_timestamp;
        let prices = self.custody.prices(&self.custody_oracle, now)?;
        let collateral_prices = self.collateral_custody.prices(&self.collateral_custody_oracle, now)?;
        let pool_aum_usd = self.pool.aum_usd;
        let mut collateral_custody = (**self.collateral_custody).clone();
        collateral_custody.accrue_borrow(now)?;
        let custody = if self.custody.key() == self.collateral_custody.key() {
            collateral_custody.accrue_funding(now, pool_aum_usd)?;
            collateral_custody.clone()
        } else {
            let mut custody = (**self.custody).clone();
            custody.accrue_funding(now, pool_aum_usd)?;
            custody
        };
        Ok(PositionState { position: (**self.position).clone(), custody, prices, collateral_custody, collateral_prices, pool_aum_usd })
    }
}

/// Accounts of the views over a whole pool (remaining accounts: custodies, then oracles).
#[derive(Accounts)]
pub struct PoolView<'info> {
    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(seeds = [Pool::LP_MINT_SEED, pool.key().as_ref()], bump = pool.lp_mint_bump)]
    pub lp_token_mint: Box<Account<'info, anchor_spl::token::Mint>>,
}

/// Accounts of the views over one custody of a pool (remaining accounts: custodies, oracles).
#[derive(Accounts)]
pub struct CustodyView<'info> {
    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(has_one = pool)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(seeds = [Pool::LP_MINT_SEED, pool.key().as_ref()], bump = pool.lp_mint_bump)]
    pub lp_token_mint: Box<Account<'info, anchor_spl::token::Mint>>,
}

/// Accounts of the views over two custodies (a trade or a swap), with their oracles.
#[derive(Accounts)]
pub struct PairView<'info> {
    #[account(seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    #[account(seeds = [Pool::SEED, pool.name.as_bytes()], bump = pool.bump)]
    pub pool: Box<Account<'info, Pool>>,

    #[account(has_one = pool)]
    pub custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the custody's oracle configuration when read.
    pub custody_oracle: UncheckedAccount<'info>,

    #[account(has_one = pool)]
    pub other_custody: Box<Account<'info, Custody>>,

    /// CHECK: validated against the other custody's oracle configuration when read.
    pub other_custody_oracle: UncheckedAccount<'info>,
}
