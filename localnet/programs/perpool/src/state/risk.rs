//! Risk-engine parameters and state carried by every custody: the liquidation ladder and
//! insurance fund, funding, slippage and the payoff of synthetic markets. Each is set when the
//! custody is added and changed only through `set_custody_config` (admin multisig); the
//! payoff is fixed for the custody's life.

use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    math::{self, PayoffFn, Step, MAX_STEPS},
    state::{BPS_POWER, MAX_HOURLY_RATE, RATE_POWER},
};

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub struct LiquidationStep {
    /// Applies below this fraction (bps) of the maintenance margin.
    pub margin_fraction_bps: u64,
    /// Fraction (bps) of the position closed at this step.
    pub close_bps: u64,
}

/// The multi-step liquidation ladder (see `math::liquidation_steps`) and where a liquidation's
/// discount goes. The full discount is `fees.liquidation_reward_bps`.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub struct LiquidationParams {
    pub steps: [LiquidationStep; MAX_STEPS],
    pub num_steps: u8,
    /// Flat fee (USD) charged on every automatic close, on top of the close fee.
    pub auto_close_fee_usd: u64,
    /// Share (bps) of each liquidation discount paid into the insurance fund.
    pub insurance_fund_fraction_bps: u64,
    /// Cap (USD, valued at the current price) of the insurance fund held in this custody;
    /// inflows beyond it go to the protocol.
    pub insurance_fund_cap_usd: u64,
}

/// Largest flat auto-close fee ($1000).
pub const MAX_AUTO_CLOSE_FEE_USD: u64 = 1_000 * math::USD_ONE;

impl LiquidationParams {
    /// The plain auto-close: one step at the maintenance margin closing everything.
    pub fn one_step() -> Self {
        let mut steps = [LiquidationStep::default(); MAX_STEPS];
        steps[0] = LiquidationStep { margin_fraction_bps: BPS_POWER, close_bps: BPS_POWER };
        Self { steps, num_steps: 1, ..Self::default() }
    }

    pub fn ladder(&self) -> Vec<Step> {
        let n = usize::from(self.num_steps).min(MAX_STEPS);
        self.steps[..n].iter().map(|s| Step { margin_fraction_bps: s.margin_fraction_bps, close_bps: s.close_bps }).collect()
    }

    pub fn validate(&self) -> Result<()> {
        let n = usize::from(self.num_steps);
        require!((1..=MAX_STEPS).contains(&n), PerpoolError::InvalidLiquidationConfig);
        require!(math::steps_are_valid(&self.ladder()), PerpoolError::InvalidLiquidationConfig);
        // Unused slots stay zero so that two equal ladders hash equally in multisig approvals.
        require!(self.steps[n..].iter().all(|s| *s == LiquidationStep::default()), PerpoolError::InvalidLiquidationConfig);
        require!(self.insurance_fund_fraction_bps <= BPS_POWER, PerpoolError::InvalidLiquidationConfig);
        require!(self.auto_close_fee_usd <= MAX_AUTO_CLOSE_FEE_USD, PerpoolError::InvalidLiquidationConfig);
        Ok(())
    }
}

/// Funding from open-interest skew (see `math::funding`).
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub struct FundingParams {
    /// C in hours (0 = funding off): a skew equal to the pool's AUM pays 1/C of size per hour.
    pub funding_c: u64,
    /// Cap on the hourly rate (9 decimals).
    pub max_hourly_rate: u64,
}

/// Largest accepted C (about 114 years of hours): beyond it funding rounds to nothing.
pub const MAX_FUNDING_C: u64 = 1_000_000;

impl FundingParams {
    pub fn validate(&self) -> Result<()> {
        require!(self.funding_c <= MAX_FUNDING_C, PerpoolError::InvalidFundingConfig);
        require!(self.max_hourly_rate <= MAX_HOURLY_RATE, PerpoolError::InvalidFundingConfig);
        require!(self.funding_c == 0 || self.max_hourly_rate > 0, PerpoolError::InvalidFundingConfig);
        Ok(())
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct FundingState {
    /// Hourly rate at the last accrual (9 decimals, positive = longs pay).
    pub current_rate: i64,
    /// Cumulative funding per USD of size (units of `math::INDEX_ONE`); positions owe
    /// `(index − snapshot) × size / INDEX_ONE` (negative = they receive).
    pub long_index: i128,
    pub short_index: i128,
    pub last_update: i64,
}

/// Price-impact curve per side: impact = A·x + B·x², x = size / pool AUM, A and B in bps.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub struct SlippageParams {
    pub long_a_bps: u64,
    pub long_b_bps: u64,
    pub short_a_bps: u64,
    pub short_b_bps: u64,
}

impl SlippageParams {
    pub fn validate(&self) -> Result<()> {
        let all = [self.long_a_bps, self.long_b_bps, self.short_a_bps, self.short_b_bps];
        require!(all.iter().all(|v| *v <= BPS_POWER), PerpoolError::InvalidSlippageConfig);
        Ok(())
    }

    pub fn for_side(&self, side: crate::state::Side) -> (u64, u64) {
        match side {
            crate::state::Side::Long => (self.long_a_bps, self.long_b_bps),
            crate::state::Side::Short => (self.short_a_bps, self.short_b_bps),
        }
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub enum PayoffKind {
    /// A real token: the custody holds it and its price is the oracle's.
    #[default]
    Spot,
    /// Synthetic markets over the oracle price P: k·P, k·P², k·√P.
    Linear,
    Square,
    Sqrt,
}

/// What a custody trades. Synthetic payoff markets hold no tokens: LPs cannot deposit into
/// them, both sides post stable collateral, and every position locks `max_profit_bps` of its
/// size in the collateral custody, the most the pool can ever pay it beyond its collateral.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default, PartialEq, Eq)]
pub struct PayoffParams {
    pub kind: PayoffKind,
    /// k, 9 decimals.
    pub scale: u64,
    /// Largest profit a position can take, in bps of its size (synthetic markets only).
    pub max_profit_bps: u64,
}

/// A synthetic position can win at most 10x its size.
pub const MAX_PAYOFF_PROFIT_BPS: u64 = 10 * BPS_POWER;

impl PayoffParams {
    pub fn function(&self) -> PayoffFn {
        match self.kind {
            PayoffKind::Spot => PayoffFn::Spot,
            PayoffKind::Linear => PayoffFn::Linear,
            PayoffKind::Square => PayoffFn::Square,
            PayoffKind::Sqrt => PayoffFn::Sqrt,
        }
    }

    pub fn is_synthetic(&self) -> bool {
        self.kind != PayoffKind::Spot
    }

    pub fn validate(&self) -> Result<()> {
        if self.is_synthetic() {
            require!(self.scale > 0 && self.scale <= 1_000 * RATE_POWER, PerpoolError::InvalidPayoffConfig);
            require!(
                self.max_profit_bps > 0 && self.max_profit_bps <= MAX_PAYOFF_PROFIT_BPS,
                PerpoolError::InvalidPayoffConfig
            );
        } else {
            require!(self.scale == 0 && self.max_profit_bps == 0, PerpoolError::InvalidPayoffConfig);
        }
        Ok(())
    }
}

/// Insurance fund tokens held in this custody's vault (in addition to owned, collateral and
/// protocol fees). Filled by liquidation discounts, drawn to cover bad debt before the LPs.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct InsuranceFund {
    pub balance: u64,
    pub total_inflow: u64,
    pub total_outflow: u64,
    /// Bad debt covered so far (USD).
    pub bad_debt_covered_usd: u64,
    /// Bad debt the fund could not cover, borne by the LPs (USD).
    pub bad_debt_uncovered_usd: u64,
}
