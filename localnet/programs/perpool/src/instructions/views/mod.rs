//! Read-only instructions that return their result as return data, for simulation.
pub mod accounts;
pub mod get_add_liquidity_amount_and_fee;
pub mod get_assets_under_management;
pub mod get_entry_price_and_fee;
pub mod get_exit_price_and_fee;
pub mod get_liquidation_price;
pub mod get_liquidation_state;
pub mod get_lp_token_price;
pub mod get_oracle_price;
pub mod get_pnl;
pub mod get_remove_liquidity_amount_and_fee;
pub mod get_swap_amount_and_fees;

pub use accounts::*;
pub use get_add_liquidity_amount_and_fee::*;
pub use get_assets_under_management::*;
pub use get_entry_price_and_fee::*;
pub use get_exit_price_and_fee::*;
pub use get_liquidation_price::*;
pub use get_liquidation_state::*;
pub use get_lp_token_price::*;
pub use get_oracle_price::*;
pub use get_pnl::*;
pub use get_remove_liquidity_amount_and_fee::*;
pub use get_swap_amount_and_fees::*;
