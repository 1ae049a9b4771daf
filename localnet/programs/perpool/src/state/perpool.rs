use anchor_lang::prelude::*;

/// Upper bound on pools per program; keeps the account a fixed size.
pub const MAX_POOLS: usize = 32;

/// Global configuration (PDA seeds: `["perpool"]`). The admin is the `Multisig` account.
#[account]
#[derive(InitSpace, Debug)]
pub struct Perpool {
    pub permissions: Permissions,
    /// Signs `set_custom_oracle_price`.
    pub oracle_authority: Pubkey,
    #[max_len(MAX_POOLS)]
    pub pools: Vec<Pubkey>,
    pub inception_time: i64,
    pub bump: u8,
    /// Bump of the transfer authority PDA (`["transfer_authority"]`) that owns every vault.
    pub transfer_authority_bump: u8,
}

impl Perpool {
    pub const SEED: &'static [u8] = b"perpool";
    pub const TRANSFER_AUTHORITY_SEED: &'static [u8] = b"transfer_authority";
}

/// Pause switches: each user action can be stopped on its own.
#[derive(AnchorSerialize, AnchorDeserialize, Clone, Copy, InitSpace, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub allow_add_liquidity: bool,
    pub allow_remove_liquidity: bool,
    pub allow_open_position: bool,
    pub allow_close_position: bool,
    pub allow_collateral_change: bool,
    pub allow_swap: bool,
    pub allow_liquidation: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            allow_add_liquidity: true,
            allow_remove_liquidity: true,
            allow_open_position: true,
            allow_close_position: true,
            allow_collateral_change: true,
            allow_swap: true,
            allow_liquidation: true,
        }
    }
}

use anchor_spl::token::{self, Burn, MintTo, Transfer};

/// Token movements. Vaults and the LP mint are owned by the transfer authority PDA, which signs
/// for the program.
impl Perpool {
    fn authority_seeds(&self) -> [&[u8]; 2] {
        [Self::TRANSFER_AUTHORITY_SEED, std::slice::from_ref(&self.transfer_authority_bump)]
    }

    /// Moves `amount` from a vault to `to`, signed by the transfer authority.
    pub fn transfer_from_vault<'info>(
        &self,
        vault: AccountInfo<'info>,
        to: AccountInfo<'info>,
        authority: AccountInfo<'info>,
        token_program: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        let seeds = self.authority_seeds();
        let signer = [&seeds[..]];
        let accounts = Transfer { from: vault, to, authority };
        token::transfer(CpiContext::new_with_signer(token_program, accounts, &signer), amount)
    }

    /// Moves `amount` from a user's token account into a vault, signed by the user.
    pub fn transfer_to_vault<'info>(
        &self,
        from: AccountInfo<'info>,
        vault: AccountInfo<'info>,
        owner: AccountInfo<'info>,
        token_program: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        let accounts = Transfer { from, to: vault, authority: owner };
        token::transfer(CpiContext::new(token_program, accounts), amount)
    }

    pub fn mint_lp<'info>(
        &self,
        mint: AccountInfo<'info>,
        to: AccountInfo<'info>,
        authority: AccountInfo<'info>,
        token_program: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        let seeds = self.authority_seeds();
        let signer = [&seeds[..]];
        let accounts = MintTo { mint, to, authority };
        token::mint_to(CpiContext::new_with_signer(token_program, accounts, &signer), amount)
    }

    pub fn burn_lp<'info>(
        &self,
        mint: AccountInfo<'info>,
        from: AccountInfo<'info>,
        owner: AccountInfo<'info>,
        token_program: AccountInfo<'info>,
        amount: u64,
    ) -> Result<()> {
        let accounts = Burn { mint, from, authority: owner };
        token::burn(CpiContext::new(token_program, accounts), amount)
    }

    pub fn check(&self, allowed: bool) -> Result<()> {
        require!(allowed, crate::error::PerpoolError::ActionPaused);
        Ok(())
    }
}
