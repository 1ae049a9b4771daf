use anchor_lang::prelude::*;

#[error_code]
pub enum PerpoolError {
    #[msg("Amount must be greater than zero")]
    ZeroAmount,
    #[msg("Source and destination token accounts hold different mints")]
    MintMismatch,
    #[msg("Source and destination token accounts are the same account")]
    SameAccount,
}
