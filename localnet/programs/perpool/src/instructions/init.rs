use anchor_lang::prelude::*;

use crate::{
    error::PerpoolError,
    state::{Multisig, Perpool, Permissions},
};

/// The BPF upgradeable loader, owner of upgradeable programs and their ProgramData.
const BPF_LOADER_UPGRADEABLE: Pubkey = pubkey!("BPFLoaderUpgradeab1e11111111111111111111111");

#[derive(AnchorSerialize, AnchorDeserialize, Clone, Debug)]
pub struct InitParams {
    pub min_signatures: u8,
    pub oracle_authority: Pubkey,
    pub permissions: Permissions,
}

/// Creates the global config and the admin multisig (signers: the remaining accounts).
#[derive(Accounts)]
pub struct Init<'info> {
    #[account(mut)]
    pub upgrade_authority: Signer<'info>,

    #[account(init, payer = upgrade_authority, space = 8 + Multisig::INIT_SPACE, seeds = [Multisig::SEED], bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    /// CHECK: PDA that owns every vault and LP mint; holds no data.
    #[account(seeds = [Perpool::TRANSFER_AUTHORITY_SEED], bump)]
    pub transfer_authority: UncheckedAccount<'info>,

    #[account(init, payer = upgrade_authority, space = 8 + Perpool::INIT_SPACE, seeds = [Perpool::SEED], bump)]
    pub perpool: Box<Account<'info, Perpool>>,

    /// CHECK: this program's account; its owner tells whether it is deployed upgradeable.
    #[account(address = crate::ID)]
    pub perpool_program: UncheckedAccount<'info>,

    /// CHECK: the program's ProgramData account when deployed upgradeable (checked below).
    pub perpool_program_data: UncheckedAccount<'info>,

    pub system_program: Program<'info, System>,
}

/// On a cluster the program is deployed upgradeable and only its upgrade authority may
/// initialize it. A program that is not owned by the upgradeable loader (a builtin on a local
/// validator) can be initialized by its first caller.
fn check_upgrade_authority(accounts: &Init) -> Result<()> {
    if *accounts.perpool_program.owner != BPF_LOADER_UPGRADEABLE {
        return Ok(());
    }
    let (expected, _) = Pubkey::find_program_address(&[crate::ID.as_ref()], &BPF_LOADER_UPGRADEABLE);
    require_keys_eq!(accounts.perpool_program_data.key(), expected, PerpoolError::NotUpgradeAuthority);
    let data = accounts.perpool_program_data.try_borrow_data()?;
    // UpgradeableLoaderState::ProgramData: u32 tag 3, u64 slot, Option<Pubkey> authority.
    let authority = match (data.get(0..4), data.get(12), data.get(13..45)) {
        (Some([3, 0, 0, 0]), Some(1), Some(key)) => Pubkey::try_from(key).map_err(|_| PerpoolError::NotUpgradeAuthority)?,
        _ => return err!(PerpoolError::NotUpgradeAuthority),
    };
    require_keys_eq!(authority, accounts.upgrade_authority.key(), PerpoolError::NotUpgradeAuthority);
    Ok(())
}

pub fn handle_init<'info>(ctx: Context<'_, '_, 'info, 'info, Init<'info>>, params: InitParams) -> Result<()> {
    check_upgrade_authority(&ctx.accounts)?;
    let signers: Vec<Pubkey> = ctx.remaining_accounts.iter().map(|a| a.key()).collect();
    ctx.accounts.multisig.set_signers(&signers, params.min_signatures)?;
    ctx.accounts.multisig.bump = ctx.bumps.multisig;

    let perpool = &mut ctx.accounts.perpool;
    perpool.permissions = params.permissions;
    perpool.oracle_authority = params.oracle_authority;
    perpool.pools = Vec::new();
    perpool.inception_time = Clock::get()?.unix_timestamp;
    perpool.bump = ctx.bumps.perpool;
    perpool.transfer_authority_bump = ctx.bumps.transfer_authority;
    emit!(crate::events::AdminAction { instruction: "init".into(), target: perpool.key() });
    Ok(())
}
