use anchor_lang::prelude::*;

use crate::{
    events::AdminAction,
    state::{Multisig, Perpool},
};

#[derive(Accounts)]
pub struct SetOracleAuthority<'info> {
    pub admin: Signer<'info>,

    #[account(mut, seeds = [Multisig::SEED], bump = multisig.bump)]
    pub multisig: Box<Account<'info, Multisig>>,

    #[account(mut, seeds = [Perpool::SEED], bump = perpool.bump)]
    pub perpool: Box<Account<'info, Perpool>>,
}

pub fn handle_set_oracle_authority(ctx: Context<SetOracleAuthority>, oracle_authority: Pubkey) -> Result<()> {
    let hash = Multisig::instruction_hash("set_oracle_authority", &[ctx.accounts.perpool.key()], &oracle_authority.try_to_vec()?);
    ctx.accounts.multisig.authorize(&ctx.accounts.admin.key(), hash)?;
    ctx.accounts.perpool.oracle_authority = oracle_authority;
    emit!(AdminAction { instruction: "set_oracle_authority".into(), target: oracle_authority });
    Ok(())
}
