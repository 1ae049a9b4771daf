use anchor_lang::prelude::*;

use crate::{events::ConfigInitialized, state::Config};

#[derive(Accounts)]
pub struct Init<'info> {
    #[account(mut)]
    pub admin: Signer<'info>,

    #[account(
        init,
        payer = admin,
        space = 8 + Config::INIT_SPACE,
        seeds = [Config::SEED],
        bump
    )]
    pub config: Account<'info, Config>,

    pub system_program: Program<'info, System>,
}

pub fn handle_init(ctx: Context<Init>) -> Result<()> {
    let now = Clock::get()?.unix_timestamp;
    let config = &mut ctx.accounts.config;
    config.admin = ctx.accounts.admin.key();
    config.created_at = now;
    config.bump = ctx.bumps.config;
    msg!("config created by {} at {}", config.admin, now);
    emit!(ConfigInitialized {
        admin: config.admin,
        created_at: now,
    });
    Ok(())
}
