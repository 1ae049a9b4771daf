use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    state::{oracle::OracleParams, FundingParams, FundingState, InsuranceFund, LiquidationParams, PayoffParams, SlippageParams},
};

pub const BPS_POWER: u64 = 10_000;
/// Leverage is expressed in bps of 1x: 10_000 = 1x, 2_500_000 = 250x.
pub const MAX_LEVERAGE_LIMIT: u64 = 1_000 * BPS_POWER;
/// Rates (borrow curve, utilization) use 9 decimals: 1_000_000_000 = 100%.
pub const RATE_POWER: u64 = 1_000_000_000;

/// One token held by a pool (PDA seeds: `["custody", pool, mint]`); its vault is the token
/// account `["custody_token_account", pool, mint]` owned by the transfer authority.
#[account]
#[derive(InitSpace, Debug)]
pub struct Custody {
    pub pool: Pubkey,
    pub mint: Pubkey,
    pub token_account: Pubkey,
    pub decimals: u8,
    pub is_stable: bool,
    pub oracle: OracleParams,
    pub pricing: PricingParams,
    pub fees: Fees,
    pub borrow_rate: BorrowRateParams,
    pub borrow_state: BorrowRateState,
    pub assets: Assets,
    pub stats: Stats,
    pub longs: PositionTotals,
    pub shorts: PositionTotals,
    /// Target share of pool value (bps) and the band LP actions and swaps must stay in.
    pub ratios: TokenRatios,
    pub liquidation: LiquidationParams,
    pub funding: FundingParams,
    pub slippage: SlippageParams,
    pub payoff: PayoffParams,
    pub funding_state: FundingState,
    pub insurance: InsuranceFund,
    pub bump: u8,
    pub token_account_bump: u8,
}

impl Custody {
    pub const SEED: &'static [u8] = b"custody";
    pub const TOKEN_ACCOUNT_SEED: &'static [u8] = b"custody_token_account";
}

/// Leverage, utilization and size limits.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug)]
pub struct PricingParams {
    pub min_initial_leverage: u64,
    pub max_initial_leverage: u64,
    /// Positions whose leverage exceeds this are liquidatable: the maintenance margin is
    /// 1 / max_leverage of size (250x → 0.4%).
    pub max_leverage: u64,
    /// Largest locked / owned after an open, in bps.
    pub max_utilization_bps: u64,
    /// Largest size of one position in USD (0 = no limit).
    pub max_position_size_usd: u64,
    /// Caps on total open interest per side in USD (0 = no limit).
    pub max_long_open_interest_usd: u64,
    pub max_short_open_interest_usd: u64,
    /// Smallest position size (USD) that may be opened, or left open by a partial close.
    pub min_trade_size_usd: u64,
    /// Smallest LP deposit (USD value).
    pub min_liquidity_deposit_usd: u64,
}

impl PricingParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            BPS_POWER <= self.min_initial_leverage
                && self.min_initial_leverage <= self.max_initial_leverage
                && self.max_initial_leverage <= self.max_leverage
                && self.max_leverage <= MAX_LEVERAGE_LIMIT,
            PerpoolError::InvalidPricingConfig
        );
        require!(
            self.max_utilization_bps > 0 && self.max_utilization_bps <= BPS_POWER,
            PerpoolError::InvalidPricingConfig
        );
        Ok(())
    }
}

/// Fees in bps of the amount or size they apply to.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug)]
pub struct Fees {
    /// Trading fee on open and on close, each at least `min_fee_usd`.
    pub open_position_bps: u64,
    pub close_position_bps: u64,
    pub min_fee_usd: u64,
    pub swap_bps: u64,
    /// LP deposit/withdrawal fee: `liquidity_min_fee_bps` when the action moves the custody
    /// toward its target ratio, rising toward `liquidity_max_fee_bps` as it moves away (K sets
    /// how fast, see `math::liquidity_fee`). Paid to the other LPs in full.
    pub liquidity_min_fee_bps: u64,
    pub liquidity_max_fee_bps: u64,
    pub liquidity_fee_k_bps: u64,
    /// Full liquidator discount, in bps of the size closed, reached at the last liquidation
    /// step (out of what is left of the collateral).
    pub liquidation_reward_bps: u64,
    /// Share of trading, swap and borrow fees kept for the protocol; the rest stays with the LPs.
    pub protocol_share_bps: u64,
}

/// Largest single fee rate accepted (10%).
pub const MAX_FEE_BPS: u64 = 1_000;
/// Largest minimum trading fee ($100).
pub const MAX_MIN_FEE_USD: u64 = 100 * crate::math::USD_ONE;

impl Fees {
    pub fn validate(&self) -> Result<()> {
        let rates = [
            self.open_position_bps,
            self.close_position_bps,
            self.swap_bps,
            self.liquidity_min_fee_bps,
            self.liquidity_max_fee_bps,
            self.liquidation_reward_bps,
        ];
        require!(rates.iter().all(|r| *r <= MAX_FEE_BPS), PerpoolError::InvalidFeeConfig);
        require!(self.liquidity_min_fee_bps <= self.liquidity_max_fee_bps, PerpoolError::InvalidFeeConfig);
        require!(self.liquidity_fee_k_bps <= BPS_POWER, PerpoolError::InvalidFeeConfig);
        require!(self.min_fee_usd <= MAX_MIN_FEE_USD, PerpoolError::InvalidFeeConfig);
        require!(self.protocol_share_bps <= BPS_POWER, PerpoolError::InvalidFeeConfig);
        Ok(())
    }
}

/// Hourly borrow rate curve (9 decimals): base + slope1 up to the optimal utilization, then
/// slope2. The seed rule "utilization × hourly rate" is base = 0, slope1 = rate, slope2 = 0,
/// optimal = 100%.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug)]
pub struct BorrowRateParams {
    pub base_rate: u64,
    pub slope1: u64,
    pub slope2: u64,
    pub optimal_utilization: u64,
}

/// Largest hourly rate a curve may reach (10% per hour).
pub const MAX_HOURLY_RATE: u64 = RATE_POWER / 10;

impl BorrowRateParams {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.optimal_utilization > 0 && self.optimal_utilization <= RATE_POWER,
            PerpoolError::InvalidBorrowRateConfig
        );
        let peak = self
            .base_rate
            .checked_add(self.slope1)
            .and_then(|r| r.checked_add(self.slope2))
            .ok_or(PerpoolError::InvalidBorrowRateConfig)?;
        require!(peak <= MAX_HOURLY_RATE, PerpoolError::InvalidBorrowRateConfig);
        Ok(())
    }
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct BorrowRateState {
    /// Hourly rate at the last accrual (9 decimals).
    pub current_rate: u64,
    /// Σ hourly rate × seconds since inception (units of `math::INDEX_ONE` = 100% of size);
    /// positions keep a snapshot and owe `(index − snapshot) × size / INDEX_ONE`.
    pub cumulative_interest: u128,
    pub last_update: i64,
}

/// Token accounting of a custody, in the mint's base units. The vault holds
/// owned + collateral + protocol_fees + insurance.balance.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct Assets {
    /// Belongs to the LPs (includes their fee share).
    pub owned: u64,
    /// Part of `owned` reserved to pay open positions' profits.
    pub locked: u64,
    /// Traders' collateral.
    pub collateral: u64,
    /// Fees kept for the protocol, withdrawable by the admin.
    pub protocol_fees: u64,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct Stats {
    pub volume_add_liquidity_usd: u64,
    pub volume_remove_liquidity_usd: u64,
    pub volume_swap_usd: u64,
    pub volume_open_position_usd: u64,
    pub volume_close_position_usd: u64,
    pub volume_liquidation_usd: u64,
    /// Fees collected, by action (USD at the time of collection).
    pub fees_add_liquidity_usd: u64,
    pub fees_remove_liquidity_usd: u64,
    pub fees_swap_usd: u64,
    pub fees_open_position_usd: u64,
    pub fees_close_position_usd: u64,
    pub fees_borrow_usd: u64,
    pub fees_liquidation_usd: u64,
}

/// Sums over the open positions of one side, for AUM and invariant checks.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, Default)]
pub struct PositionTotals {
    pub open_positions: u64,
    pub size_usd: u64,
    pub collateral_usd: u64,
    /// Σ size / entry price (token units × 1e9): the book's value at price P is P × this.
    pub size_over_entry: u128,
}

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug)]
pub struct TokenRatios {
    pub target_bps: u64,
    pub min_bps: u64,
    pub max_bps: u64,
}

impl TokenRatios {
    pub fn validate(&self) -> Result<()> {
        require!(
            self.min_bps <= self.target_bps && self.target_bps <= self.max_bps && self.max_bps <= BPS_POWER,
            PerpoolError::InvalidTokenRatios
        );
        Ok(())
    }
}

use crate::{math, state::oracle::Prices};

impl Custody {
    pub fn validate_config(&self) -> Result<()> {
        self.oracle.validate()?;
        self.pricing.validate()?;
        self.fees.validate()?;
        self.borrow_rate.validate()?;
        self.ratios.validate()?;
        self.liquidation.validate()?;
        self.funding.validate()?;
        self.slippage.validate()?;
        self.payoff.validate()?;
        require!(!(self.payoff.is_synthetic() && self.is_stable), PerpoolError::InvalidPayoffConfig);
        Ok(())
    }

    /// The custody's validated prices; for a payoff market, `payoff(P)` of the oracle's.
    pub fn prices(&self, oracle: &AccountInfo, now: i64) -> Result<Prices> {
        let raw = self.oracle.read(oracle, now)?;
        if !self.payoff.is_synthetic() {
            return Ok(raw);
        }
        let f = self.payoff.function();
        Ok(Prices {
            spot: math::payoff_price(f, self.payoff.scale, &raw.spot)?,
            ema: math::payoff_price(f, self.payoff.scale, &raw.ema)?,
        })
    }

    pub fn is_synthetic(&self) -> bool {
        self.payoff.is_synthetic()
    }

    /// Refuses LP deposits, withdrawals and swaps on a synthetic market.
    pub fn require_tokens(&self) -> Result<()> {
        require!(!self.is_synthetic(), PerpoolError::SyntheticCustody);
        Ok(())
    }

    /// Advances the funding indices to `now`. Every instruction that changes open interest
    /// calls this first, so the rate from the current open interest is the one that held over
    /// the whole elapsed period (the pool's AUM is taken as last recorded). Idempotent within
    /// one timestamp.
    pub fn accrue_funding(&mut self, now: i64, pool_aum_usd: u64) -> Result<()> {
        let rate = self.funding_rate(pool_aum_usd)?;
        let state = &mut self.funding_state;
        if state.last_update != 0 && now > state.last_update {
            let elapsed = u64::try_from(now - state.last_update).map_err(|_| PerpoolError::MathOverflow)?;
            let (long_index, short_index) = math::accrue_funding(
                state.long_index,
                state.short_index,
                rate,
                elapsed,
                self.longs.size_usd,
                self.shorts.size_usd,
            )?;
            state.long_index = long_index;
            state.short_index = short_index;
        }
        if now > state.last_update {
            state.last_update = now;
        }
        state.current_rate = rate;
        Ok(())
    }

    /// Sets the displayed funding rate from the open interest after a change (accrual already
    /// recomputes it from the open interest it covers).
    pub fn refresh_funding_rate(&mut self, pool_aum_usd: u64) -> Result<()> {
        self.funding_state.current_rate = self.funding_rate(pool_aum_usd)?;
        Ok(())
    }

    /// Hourly funding rate from the current open interest (positive = longs pay).
    pub fn funding_rate(&self, pool_aum_usd: u64) -> Result<i64> {
        let f = &self.funding;
        Ok(math::funding_rate(self.longs.size_usd, self.shorts.size_usd, pool_aum_usd, f.funding_c, f.max_hourly_rate)?)
    }

    /// Sets the displayed borrow rate from the utilization after a change.
    pub fn refresh_borrow_rate(&mut self) -> Result<()> {
        self.borrow_state.current_rate = self.hourly_borrow_rate()?;
        Ok(())
    }

    pub fn funding_index(&self, side: crate::state::Side) -> i128 {
        match side {
            crate::state::Side::Long => self.funding_state.long_index,
            crate::state::Side::Short => self.funding_state.short_index,
        }
    }

    /// Room (tokens, valued high) left under the insurance fund's cap at `prices`.
    pub fn insurance_room(&self, prices: &Prices) -> Result<u64> {
        let value = math::token_to_usd_ceil(self.insurance.balance, self.decimals, &prices.max())?;
        let room_usd = self.liquidation.insurance_fund_cap_usd.saturating_sub(value);
        Ok(math::usd_to_token_floor_saturating(room_usd, self.decimals, &prices.max())?)
    }

    pub fn add_to_insurance(&mut self, amount: u64) -> Result<()> {
        self.insurance.balance = self.insurance.balance.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
        self.insurance.total_inflow = self.insurance.total_inflow.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
        Ok(())
    }

    /// Covers `bad_debt_usd` from the insurance fund before the LPs: moves up to that value of
    /// fund tokens (valued low, so the fund pays enough) into `owned`. Returns the tokens moved.
    pub fn cover_bad_debt(&mut self, bad_debt_usd: u64, prices: &Prices) -> Result<u64> {
        if bad_debt_usd == 0 {
            return Ok(0);
        }
        // More tokens than a u64 holds (a crashed price) is more than the fund has: it gives all.
        let wanted = math::usd_to_token_ceil_saturating(bad_debt_usd, self.decimals, &prices.min())?;
        let amount = wanted.min(self.insurance.balance);
        let covered_usd = if amount == wanted {
            bad_debt_usd
        } else {
            math::token_to_usd_floor(amount, self.decimals, &prices.min())?.min(bad_debt_usd)
        };
        let fund = &mut self.insurance;
        fund.balance -= amount;
        fund.total_outflow = fund.total_outflow.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
        fund.bad_debt_covered_usd = fund.bad_debt_covered_usd.saturating_add(covered_usd);
        fund.bad_debt_uncovered_usd = fund.bad_debt_uncovered_usd.saturating_add(bad_debt_usd - covered_usd);
        self.assets.owned = self.assets.owned.checked_add(amount).ok_or(PerpoolError::MathOverflow)?;
        Ok(amount)
    }

    /// Utilization (9 decimals), rounded up so borrowers are never undercharged.
    pub fn utilization(&self) -> Result<u64> {
        Ok(math::utilization_ceil(self.assets.locked, self.assets.owned)?)
    }

    pub fn hourly_borrow_rate(&self) -> Result<u64> {
        let p = &self.borrow_rate;
        Ok(math::hourly_borrow_rate(self.utilization()?, p.base_rate, p.slope1, p.slope2, p.optimal_utilization)?)
    }

    /// Advances the cumulative borrow index to `now`. Every instruction that changes `owned` or
    /// `locked` calls this first, so the rate from the current utilization is the one that held
    /// over the whole elapsed period. Idempotent within one timestamp.
    pub fn accrue_borrow(&mut self, now: i64) -> Result<()> {
        let rate = self.hourly_borrow_rate()?;
        let state = &mut self.borrow_state;
        if state.last_update != 0 && now > state.last_update {
            let elapsed = u64::try_from(now - state.last_update).map_err(|_| PerpoolError::MathOverflow)?;
            state.cumulative_interest = math::accrue_index(state.cumulative_interest, rate, elapsed)?;
        }
        if now > state.last_update {
            state.last_update = now;
        }
        state.current_rate = rate;
        Ok(())
    }

    /// Tokens the LPs can take out or traders can borrow.
    pub fn available(&self) -> Result<u64> {
        Ok(self.assets.owned.checked_sub(self.assets.locked).ok_or(PerpoolError::MathOverflow)?)
    }

    /// LP fee (bps) for an action moving `delta_usd` of value into (`adding`) or out of this
    /// custody, whose owned tokens are worth `value_usd` in a pool worth `aum_usd`.
    pub fn liquidity_fee_bps(&self, value_usd: u64, aum_usd: u64, delta_usd: u64, adding: bool) -> Result<u64> {
        let before = math::ratio_bps(value_usd, aum_usd)?;
        let after = if adding {
            let value = value_usd.checked_add(delta_usd).ok_or(PerpoolError::MathOverflow)?;
            math::ratio_bps(value, aum_usd.checked_add(delta_usd).ok_or(PerpoolError::MathOverflow)?)?
        } else {
            math::ratio_bps(value_usd.saturating_sub(delta_usd), aum_usd.saturating_sub(delta_usd))?
        };
        let f = &self.fees;
        Ok(math::liquidity_fee_bps(
            f.liquidity_min_fee_bps,
            f.liquidity_max_fee_bps,
            f.liquidity_fee_k_bps,
            self.ratios.target_bps,
            before,
            after,
        )?)
    }

    /// Adds the LP share of a fee to `owned` and the protocol share to `protocol_fees`.
    pub fn collect_fee(&mut self, fee_amount: u64) -> Result<()> {
        let split = math::split_fee(fee_amount, self.fees.protocol_share_bps)?;
        self.assets.owned = self.assets.owned.checked_add(split.lp_share).ok_or(PerpoolError::MathOverflow)?;
        self.assets.protocol_fees =
            self.assets.protocol_fees.checked_add(split.protocol_share).ok_or(PerpoolError::MathOverflow)?;
        Ok(())
    }

    pub fn totals_mut(&mut self, side: crate::state::Side) -> &mut PositionTotals {
        match side {
            crate::state::Side::Long => &mut self.longs,
            crate::state::Side::Short => &mut self.shorts,
        }
    }
}

/// USD value of an open book side at `price_9dp` (its size plus the traders' PnL).
pub fn book_value_usd(totals: &PositionTotals, price_9dp: u64) -> Result<u64> {
    let value = math::mul_div_floor(totals.size_over_entry, u128::from(price_9dp), u128::from(math::RATE_ONE))?;
    Ok(math::to_u64(value)?)
}

/// `size × 1e9 / entry`, the quantity `PositionTotals::size_over_entry` sums.
pub fn size_over_entry(size_usd: u64, entry_price_9dp: u64) -> Result<u128> {
    Ok(math::mul_div_floor(u128::from(size_usd), u128::from(math::RATE_ONE), u128::from(entry_price_9dp))?)
}

impl Custody {
    /// Collateral-side bookkeeping of a close: `collateral_amount` and `locked_amount` are
    /// released, `paid_out` leaves the vault, and the pool keeps the rest. The fee is collected
    /// out of what the pool keeps (in full when the trader is paid a profit, since the payout
    /// was reduced by it); the protocol takes its share, at most what stays unlocked, and the
    /// LPs the remainder and any loss.
    pub fn settle_close(&mut self, collateral_amount: u64, locked_amount: u64, paid_out: u64, fee_amount: u64) -> Result<()> {
        self.assets.collateral = self.assets.collateral.checked_sub(collateral_amount).ok_or(PerpoolError::MathOverflow)?;
        self.assets.locked = self.assets.locked.checked_sub(locked_amount).ok_or(PerpoolError::MathOverflow)?;
        let kept = i128::from(collateral_amount) - i128::from(paid_out);
        let collected = if kept >= 0 { fee_amount.min(u64::try_from(kept).unwrap_or(u64::MAX)) } else { fee_amount };
        // A payout capped at collateral + locked can leave nothing unlocked; the protocol's
        // share then yields to the tokens locked for other positions instead of failing the close.
        let unlocked_after = (i128::from(self.assets.owned) + kept - i128::from(self.assets.locked)).max(0);
        let share = math::split_fee(collected, self.fees.protocol_share_bps)?.protocol_share;
        let protocol = share.min(u64::try_from(unlocked_after).unwrap_or(u64::MAX));
        self.assets.protocol_fees = self.assets.protocol_fees.checked_add(protocol).ok_or(PerpoolError::MathOverflow)?;
        let owned = i128::from(self.assets.owned) + kept - i128::from(protocol);
        self.assets.owned = u64::try_from(owned).map_err(|_| PerpoolError::InsufficientLiquidity)?;
        require!(self.assets.locked <= self.assets.owned, PerpoolError::InsufficientLiquidity);
        Ok(())
    }

    /// Takes a closed slice of a position out of its side's totals.
    pub fn remove_from_book(
        &mut self,
        side: crate::state::Side,
        entry_price: u64,
        old_size_usd: u64,
        new_size_usd: u64,
        collateral_usd: u64,
        closes_position: bool,
    ) -> Result<()> {
        let removed_units = size_over_entry(old_size_usd, entry_price)?
            .checked_sub(size_over_entry(new_size_usd, entry_price)?)
            .ok_or(PerpoolError::MathOverflow)?;
        let totals = self.totals_mut(side);
        totals.size_usd = totals.size_usd.saturating_sub(old_size_usd - new_size_usd);
        totals.collateral_usd = totals.collateral_usd.saturating_sub(collateral_usd);
        totals.size_over_entry = totals.size_over_entry.saturating_sub(removed_units);
        if closes_position {
            totals.open_positions = totals.open_positions.saturating_sub(1);
        }
        Ok(())
    }
}

/// Reads the traded and collateral custodies' prices, accrues the collateral custody's
/// borrow index and the traded custody's funding to `now`. For a long both are the same account: the traded copy is refreshed so
/// the two stay identical. Returns (prices, collateral prices, same account).
pub fn load_position_custodies<'info>(
    custody: &mut Account<'info, Custody>,
    custody_oracle: &AccountInfo<'info>,
    collateral_custody: &mut Account<'info, Custody>,
    collateral_custody_oracle: &AccountInfo<'info>,
    now: i64,
    pool_aum_usd: u64,
) -> Result<(Prices, Prices, bool)> {
    let same = custody.key() == collateral_custody.key();
    let prices = custody.prices(custody_oracle, now)?;
    let collateral_prices = collateral_custody.prices(collateral_custody_oracle, now)?;
    collateral_custody.accrue_borrow(now)?;
    if same {
        collateral_custody.accrue_funding(now, pool_aum_usd)?;
    } else {
        custody.accrue_funding(now, pool_aum_usd)?;
    }
    sync_same_custody(collateral_custody, custody, same);
    Ok((prices, collateral_prices, same))
}

/// When one custody is passed as two accounts, copies `from` into `to` so that whichever copy
/// Anchor writes back last holds every change.
pub fn sync_same_custody<'info>(from: &Account<'info, Custody>, to: &mut Account<'info, Custody>, same: bool) {
    if same {
        to.set_inner((**from).clone());
    }
}
