//! Perpool: a multi-token custody pool perpetuals exchange.
//!
//! Instruction handlers live one per file under `instructions/`, account types one per file
//! under `state/`.
#![allow(unexpected_cfgs)]

use anchor_lang::prelude::*;

pub mod error;
pub mod events;
pub mod instructions;
pub mod math;
pub mod state;

use instructions::*;

declare_id!("49sMQuhmLDssg8CxiHZXfg736edm8L76RKvG594gc8oc");

#[program]
pub mod perpool {
    use super::*;

    /// Creates the global config PDA and records the admin.
    pub fn init(ctx: Context<Init>) -> Result<()> {
        instructions::init::handle_init(ctx)
    }

    /// Moves SPL tokens between two accounts of the same mint, signed by the source owner.
    pub fn transfer_tokens(ctx: Context<TransferTokens>, amount: u64) -> Result<()> {
        instructions::transfer_tokens::handle_transfer_tokens(ctx, amount)
    }
}
