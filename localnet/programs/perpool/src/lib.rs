//! Perpool: a multi-token custody pool perpetuals exchange.
//!
//! LPs deposit any pool token for the pool's LP token; traders open leveraged longs and shorts
//! priced by oracles, borrowing the size beyond their collateral from the pool. Instruction
//! handlers live one per file under `instructions/`, account types one per file under `state/`,
//! and the money math, free of any account, under `math/`.
#![allow(unexpected_cfgs)]

use anchor_lang::prelude::*;

pub mod error;
pub mod events;
pub mod instructions;
pub mod math;
pub mod state;

use instructions::*;
use state::{CloseQuote, OpenQuote, Permissions};

declare_id!("49sMQuhmLDssg8CxiHZXfg736edm8L76RKvG594gc8oc");

#[program]
pub mod perpool {
    use super::*;

    // Admin (multisig)

    pub fn init<'info>(ctx: Context<'_, '_, 'info, 'info, Init<'info>>, params: InitParams) -> Result<()> {
        handle_init(ctx, params)
    }

    pub fn approve_admin_instruction(ctx: Context<ApproveAdminInstruction>, instruction_hash: [u8; 32]) -> Result<()> {
        handle_approve_admin_instruction(ctx, instruction_hash)
    }

    pub fn add_pool(ctx: Context<AddPool>, name: String) -> Result<()> {
        handle_add_pool(ctx, name)
    }

    pub fn add_custody(ctx: Context<AddCustody>, params: AddCustodyParams) -> Result<()> {
        handle_add_custody(ctx, params)
    }

    pub fn set_custody_config(ctx: Context<SetCustodyConfig>, config: CustodyConfig) -> Result<()> {
        handle_set_custody_config(ctx, config)
    }

    pub fn set_permissions(ctx: Context<SetPermissions>, permissions: Permissions) -> Result<()> {
        handle_set_permissions(ctx, permissions)
    }

    pub fn set_oracle_authority(ctx: Context<SetOracleAuthority>, oracle_authority: Pubkey) -> Result<()> {
        handle_set_oracle_authority(ctx, oracle_authority)
    }

    pub fn withdraw_protocol_fees(ctx: Context<WithdrawProtocolFees>, amount: u64) -> Result<()> {
        handle_withdraw_protocol_fees(ctx, amount)
    }

    pub fn remove_custody(ctx: Context<RemoveCustody>) -> Result<()> {
        handle_remove_custody(ctx)
    }

    pub fn remove_pool(ctx: Context<RemovePool>) -> Result<()> {
        handle_remove_pool(ctx)
    }

    // Oracle

    pub fn set_custom_oracle_price(ctx: Context<SetCustomOraclePrice>, params: SetCustomOraclePriceParams) -> Result<()> {
        handle_set_custom_oracle_price(ctx, params)
    }

    // Liquidity

    pub fn add_liquidity<'info>(ctx: Context<'_, '_, 'info, 'info, AddLiquidity<'info>>, params: AddLiquidityParams) -> Result<()> {
        handle_add_liquidity(ctx, params)
    }

    pub fn remove_liquidity<'info>(ctx: Context<'_, '_, 'info, 'info, RemoveLiquidity<'info>>, params: RemoveLiquidityParams) -> Result<()> {
        handle_remove_liquidity(ctx, params)
    }

    // Trading

    pub fn open_position(ctx: Context<OpenPosition>, params: OpenPositionParams) -> Result<()> {
        handle_open_position(ctx, params)
    }

    pub fn add_collateral(ctx: Context<AddCollateral>, amount: u64) -> Result<()> {
        handle_add_collateral(ctx, amount)
    }

    pub fn remove_collateral(ctx: Context<RemoveCollateral>, collateral_usd: u64) -> Result<()> {
        handle_remove_collateral(ctx, collateral_usd)
    }

    pub fn close_position(ctx: Context<ClosePosition>, params: ClosePositionParams) -> Result<()> {
        handle_close_position(ctx, params)
    }

    pub fn swap(ctx: Context<Swap>, params: SwapParams) -> Result<()> {
        handle_swap(ctx, params)
    }

    // Permissionless cranks

    pub fn accrue_borrow(ctx: Context<AccrueBorrow>) -> Result<()> {
        handle_accrue_borrow(ctx)
    }

    pub fn update_funding(ctx: Context<UpdateFunding>) -> Result<()> {
        handle_update_funding(ctx)
    }

    pub fn update_pool_aum<'info>(ctx: Context<'_, '_, 'info, 'info, UpdatePoolAum<'info>>) -> Result<()> {
        handle_update_pool_aum(ctx)
    }

    pub fn liquidate(ctx: Context<Liquidate>) -> Result<()> {
        handle_liquidate(ctx)
    }

    // Views (simulate; the result is the return data)

    pub fn get_entry_price_and_fee(ctx: Context<PairView>, params: GetEntryPriceAndFeeParams) -> Result<OpenQuote> {
        handle_get_entry_price_and_fee(ctx, params)
    }

    pub fn get_exit_price_and_fee(ctx: Context<PositionView>, close_bps: u64) -> Result<CloseQuote> {
        handle_get_exit_price_and_fee(ctx, close_bps)
    }

    pub fn get_pnl(ctx: Context<PositionView>) -> Result<PositionPnl> {
        handle_get_pnl(ctx)
    }

    pub fn get_liquidation_price(ctx: Context<PositionView>) -> Result<u64> {
        handle_get_liquidation_price(ctx)
    }

    pub fn get_liquidation_state(ctx: Context<PositionView>) -> Result<bool> {
        handle_get_liquidation_state(ctx)
    }

    pub fn get_oracle_price(ctx: Context<CustodyView>) -> Result<OraclePriceView> {
        handle_get_oracle_price(ctx)
    }

    pub fn get_lp_token_price<'info>(ctx: Context<'_, '_, 'info, 'info, PoolView<'info>>) -> Result<u64> {
        handle_get_lp_token_price(ctx)
    }

    pub fn get_assets_under_management<'info>(ctx: Context<'_, '_, 'info, 'info, PoolView<'info>>) -> Result<AumView> {
        handle_get_assets_under_management(ctx)
    }

    pub fn get_add_liquidity_amount_and_fee<'info>(ctx: Context<'_, '_, 'info, 'info, CustodyView<'info>>, amount_in: u64) -> Result<AddLiquidityQuote> {
        handle_get_add_liquidity_amount_and_fee(ctx, amount_in)
    }

    pub fn get_remove_liquidity_amount_and_fee<'info>(ctx: Context<'_, '_, 'info, 'info, CustodyView<'info>>, lp_amount_in: u64) -> Result<RemoveLiquidityQuote> {
        handle_get_remove_liquidity_amount_and_fee(ctx, lp_amount_in)
    }

    pub fn get_swap_amount_and_fees(ctx: Context<PairView>, amount_in: u64) -> Result<SwapQuote> {
        handle_get_swap_amount_and_fees(ctx, amount_in)
    }
}
