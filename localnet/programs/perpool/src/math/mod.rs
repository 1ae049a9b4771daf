//! Pure, integer-only money math for Perpool (no accounts, no instructions, no floats).
//!
//! Every function is checked: it returns [`MathResult`] instead of wrapping or truncating, and
//! every inexact division names its rounding (`_floor` / `_ceil`). The rule is DESIGN §4:
//! **round in the pool's favour** — fees, losses, borrow interest and thresholds up; profits,
//! payouts, LP mints/redemptions and token amounts paid out down.
//!
//! # Units
//!
//! | quantity                 | type   | scale                                                  |
//! |--------------------------|--------|--------------------------------------------------------|
//! | USD amount               | `u64`  | [`USD_DECIMALS`] = 6, `$1 = 1_000_000`                  |
//! | basis points             | `u64`  | [`BPS_DENOMINATOR`] = 10_000 = 100%                     |
//! | rate / fraction / index  | `u64`/`u128` | [`RATE_DECIMALS`] = 9, [`RATE_ONE`] = 1e9 = 100% |
//! | oracle price             | [`OraclePrice`] | `price × 10^exponent` USD per whole token      |
//! | stored (entry) price     | `u64`  | [`PRICE_DECIMALS`] = 9, USD per whole token × 1e9       |
//! | token amount             | `u64`  | mint base units, with the mint's `decimals: u8`         |
//! | LP token amount          | `u64`  | [`LP_DECIMALS`] = 6 (1 LP = $1 at the first deposit)   |
//! | leverage                 | `u64`  | bps: 250x = 2_500_000                                  |
//! | time                     | `u64`  | seconds; borrow rates are per hour ([`SECONDS_PER_HOUR`]) |
//!
//! # Rounding map for instruction authors
//!
//! - Collateral / deposits credited to a user: `token_to_usd_floor`, at the *lower* of the prices
//!   you have (e.g. `min(spot, ema)`).
//! - Tokens paid out (payouts, LP redemption, swap out): `usd_to_token_floor`, at the *higher*
//!   price.
//! - Tokens the user must bring for a USD amount: `usd_to_token_ceil`.
//! - Token amounts capped right after by what an account holds (a payout, a fee collected out
//!   of what the pool keeps, a fund's room, bad debt covered by the fund): the `_saturating`
//!   variants, so a collateral price fallen to almost nothing cannot make a close fail.
//! - Entry price: [`pnl::entry_price_9dp`] (long ceil, short floor); exit price:
//!   [`pnl::exit_price_9dp`] (long floor, short ceil).
//! - Fees: [`fees`] always ceil. Borrow rate and borrow fee: ceil; the index accrues exactly.
//! - Profit floor, loss ceil ([`pnl::position_pnl`]); payout floor ([`close::close_amounts`]).
//! - Liquidation threshold ceil, compared strictly; leverage ceil (checked with `<=` max).
//! - LP: mint with AUM valued high, burn with AUM valued low ([`lp::custody_value_usd`]); both
//!   `lp_to_mint` and `usd_for_lp` floor.

pub mod borrow;
pub mod checked;
pub mod close;
pub mod fees;
pub mod funding;
pub mod liquidation;
pub mod liquidation_steps;
pub mod liquidity_fee;
pub mod lp;
pub mod payoff;
pub mod pnl;
pub mod price;
pub mod slippage;

#[cfg(test)]
mod test_values;

pub use borrow::*;
pub use checked::{
    checked_sum, div_pow10_ceil, div_pow10_floor, mul_div_ceil, mul_div_ceil_u64, mul_div_floor,
    mul_div_floor_u64, mul_pow10, pow10, to_u64,
};
pub use close::*;
pub use fees::*;
pub use funding::*;
pub use liquidation::*;
pub use liquidation_steps::*;
pub use liquidity_fee::*;
pub use lp::*;
pub use payoff::*;
pub use pnl::*;
pub use price::*;
pub use slippage::*;

/// Decimals of every USD amount (`$1 = 1_000_000`).
pub const USD_DECIMALS: u8 = 6;
/// One dollar in USD units.
pub const USD_ONE: u64 = 1_000_000;
/// Basis-point denominator: 10_000 bps = 100%.
pub const BPS_DENOMINATOR: u64 = 10_000;
/// Decimals of rates, fractions (utilization) and cumulative borrow indices.
pub const RATE_DECIMALS: u8 = 9;
/// 100% in rate units.
pub const RATE_ONE: u64 = 1_000_000_000;
/// Decimals of stored prices (entry price): USD per whole token × 1e9.
pub const PRICE_DECIMALS: u8 = 9;
/// Decimals of the LP token (so that 1 LP = $1 = `USD_ONE` base units at the first deposit).
pub const LP_DECIMALS: u8 = 6;
/// Borrow rates are quoted per hour.
pub const SECONDS_PER_HOUR: u64 = 3_600;

/// Why a math function refused to produce a number. The program maps each variant to its own
/// Anchor error; the math layer stays free of Anchor so it can be unit-tested on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathError {
    /// A result or intermediate does not fit its integer type.
    Overflow,
    /// A divisor (price, supply, AUM, entry price, ...) was zero.
    DivisionByZero,
    /// Inputs violate a precondition (e.g. locked > owned, fraction > 100%).
    InvalidInput,
}

impl core::fmt::Display for MathError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            MathError::Overflow => "math overflow",
            MathError::DivisionByZero => "division by zero",
            MathError::InvalidInput => "invalid math input",
        };
        f.write_str(text)
    }
}

/// Result of every fallible math function.
pub type MathResult<T> = core::result::Result<T, MathError>;
