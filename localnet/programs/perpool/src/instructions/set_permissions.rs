use anchor_lang::prelude::*;

use crate::{
    events::AdminAction,
    state::{Multisig, Perpool, Permissions},
};

#[derive(Accounts)]
pub struct SetPermissions<'info> {
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    #[account(mut, seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,
}

pub fn handle_set_permissions(ctx: Context<SetPermissions>, permissions: Permissions) -> Result<()> {
    let hash = Multisig::instruction_hash("set_permissions", &[ctx.accounts.perpool.key()], &permissions.try_to_vec()?);
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    ctx.accounts.perpool.permissions = permissions;
    emit!(AdminAction { instruction: "set_permissions".into(), target: ctx.accounts.perpool.key() });
    Ok(())
}
