use anchor_lang::prelude::*;

use crate::{events::AdminApproval, state::Multisig};

/// Records one multisig signer's approval of the sha256 of an exact admin instruction.
#[derive(Accounts)]
pub struct ApproveAdminInstruction<'info> {
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,
}

pub fn handle_approve_admin_instruction(ctx: Context<ApproveAdminInstruction>, instruction_hash: [u8; 32]) -> Result<()> {
    let signed = ctx.accounts.multisig.approve(&ctx.accounts.admin.key(), instruction_hash)?;
    emit!(AdminApproval {
        instruction: "approve_admin_instruction".into(),
        signer: ctx.accounts.admin.key(),
        signed,
        required: ctx.accounts.multisig.min_signatures,
    });
    Ok(())
}
