//! Events emitted by every state-changing user action, crank and admin action.
use anchor_lang::prelude::*;

use crate::state::Side;

#[event]
pub struct AdminApproval {
    pub instruction: String,
    pub signer: Pubkey,
    pub signed: u8,
    pub required: u8,
}

#[event]
pub struct AdminAction {
    pub instruction: String,
    pub target: Pubkey,
}

#[event]
pub struct OraclePriceSet {
    pub oracle: Pubkey,
    pub price: u64,
    pub expo: i32,
    pub conf: u64,
    pub ema: u64,
    pub publish_time: i64,
}

#[event]
pub struct LiquidityAdded {
    pub owner: Pubkey,
    pub pool: Pubkey,
    pub custody: Pubkey,
    pub amount_in: u64,
    pub fee_amount: u64,
    pub lp_amount: u64,
    pub aum_usd: u64,
}

#[event]
pub struct LiquidityRemoved {
    pub owner: Pubkey,
    pub pool: Pubkey,
    pub custody: Pubkey,
    pub lp_amount: u64,
    pub amount_out: u64,
    pub fee_amount: u64,
    pub aum_usd: u64,
}

#[event]
pub struct PositionOpened {
    pub owner: Pubkey,
    pub position: Pubkey,
    pub custody: Pubkey,
    pub collateral_custody: Pubkey,
    pub side: Side,
    pub price: u64,
    pub size_usd: u64,
    pub collateral_usd: u64,
    pub collateral_amount: u64,
    pub fee_usd: u64,
    pub locked_amount: u64,
}

#[event]
pub struct PositionClosed {
    pub owner: Pubkey,
    pub position: Pubkey,
    pub side: Side,
    pub exit_price: u64,
    pub size_usd: u64,
    pub profit_usd: u64,
    pub loss_usd: u64,
    pub fee_usd: u64,
    pub borrow_fee_usd: u64,
    pub payout_amount: u64,
    pub remaining_size_usd: u64,
    pub funding_paid_usd: u64,
    pub funding_received_usd: u64,
    pub bad_debt_usd: u64,
}

#[event]
pub struct PositionLiquidated {
    pub owner: Pubkey,
    pub position: Pubkey,
    pub liquidator: Pubkey,
    pub side: Side,
    pub exit_price: u64,
    pub size_usd: u64,
    pub profit_usd: u64,
    pub loss_usd: u64,
    pub fee_usd: u64,
    pub borrow_fee_usd: u64,
    pub reward_amount: u64,
    pub owner_amount: u64,
    pub bad_debt_usd: u64,
    /// Liquidation step applied (0 = the maintenance margin) and the fraction closed.
    pub step: u8,
    pub close_bps: u64,
    pub discount_amount: u64,
    pub insurance_amount: u64,
    pub protocol_amount: u64,
    pub auto_close_fee_usd: u64,
    pub funding_paid_usd: u64,
    pub funding_received_usd: u64,
    /// Tokens left in the position as collateral after a partial liquidation.
    pub retained_amount: u64,
    pub remaining_size_usd: u64,
}

/// Every movement of a custody's insurance fund (tokens).
#[event]
pub struct InsuranceFundChanged {
    pub custody: Pubkey,
    pub inflow: u64,
    pub outflow: u64,
    pub balance: u64,
    /// Bad debt the outflow covered (USD), 0 for inflows.
    pub bad_debt_usd: u64,
}

#[event]
pub struct FundingUpdated {
    pub custody: Pubkey,
    pub hourly_rate: i64,
    pub long_index: i128,
    pub short_index: i128,
}

#[event]
pub struct CollateralChanged {
    pub owner: Pubkey,
    pub position: Pubkey,
    pub amount: u64,
    pub collateral_usd_delta: u64,
    pub added: bool,
    pub collateral_usd: u64,
}

#[event]
pub struct Swapped {
    pub owner: Pubkey,
    pub custody_in: Pubkey,
    pub custody_out: Pubkey,
    pub amount_in: u64,
    pub amount_out: u64,
    pub fee_amount: u64,
}

#[event]
pub struct BorrowAccrued {
    pub custody: Pubkey,
    pub hourly_rate: u64,
    pub cumulative_interest: u128,
    pub timestamp: i64,
}

#[event]
pub struct PoolAumUpdated {
    pub pool: Pubkey,
    pub aum_usd: u64,
}

#[event]
pub struct ProtocolFeesWithdrawn {
    pub custody: Pubkey,
    pub amount: u64,
    pub receiver: Pubkey,
}
