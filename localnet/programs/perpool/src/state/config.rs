use anchor_lang::prelude::*;

/// Global configuration, one per program (PDA seeds: `["config"]`).
#[account]
#[derive(InitSpace)]
pub struct Config {
    pub admin: Pubkey,
    /// Clock unix_timestamp at creation.
    pub created_at: i64,
    pub bump: u8,
}

impl Config {
    pub const SEED: &'static [u8] = b"config";
}
