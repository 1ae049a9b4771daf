use anchor_lang::prelude::*;
use anchor_lang::solana_program::hash::hashv;

use crate::error::PerpoolError;

pub const MAX_SIGNERS: usize = 6;

/// M-of-N admin (PDA seeds: `["multisig"]`). Signers approve the sha256 of one exact admin
/// instruction (`approve_admin_instruction`); the instruction then executes when sent by a signer
/// whose approval, with the recorded ones, reaches `min_signatures`. Approving a different
/// instruction starts a new round.
#[account]
#[derive(InitSpace, Debug)]
pub struct Multisig {
    pub num_signers: u8,
    pub min_signatures: u8,
    pub num_signed: u8,
    pub signers: [Pubkey; MAX_SIGNERS],
    pub signed: [bool; MAX_SIGNERS],
    /// sha256 of the instruction being approved.
    pub instruction_hash: [u8; 32],
    pub bump: u8,
}

impl Multisig {
    pub const SEED: &'static [u8] = b"multisig";

    pub fn set_signers(&mut self, signers: &[Pubkey], min_signatures: u8) -> Result<()> {
        require!(
            !signers.is_empty() && signers.len() <= MAX_SIGNERS,
            PerpoolError::InvalidMultisigConfig
        );
        require!(
            min_signatures >= 1 && usize::from(min_signatures) <= signers.len(),
            PerpoolError::InvalidMultisigConfig
        );
        for (i, signer) in signers.iter().enumerate() {
            require!(!signers[..i].contains(signer), PerpoolError::InvalidMultisigConfig);
        }
        self.signers = [Pubkey::default(); MAX_SIGNERS];
        self.signers[..signers.len()].copy_from_slice(signers);
        self.num_signers = u8::try_from(signers.len()).map_err(|_| PerpoolError::InvalidMultisigConfig)?;
        self.min_signatures = min_signatures;
        self.reset();
        Ok(())
    }

    fn reset(&mut self) {
        self.num_signed = 0;
        self.signed = [false; MAX_SIGNERS];
        self.instruction_hash = [0; 32];
    }

    fn signer_index(&self, signer: &Pubkey) -> Result<usize> {
        self.signers[..usize::from(self.num_signers)]
            .iter()
            .position(|s| s == signer)
            .ok_or_else(|| error!(PerpoolError::NotAMultisigSigner))
    }

    /// sha256 binding an approval to one exact admin instruction: its name, the keys of its
    /// named accounts in order, and its borsh-serialized arguments.
    pub fn instruction_hash(name: &str, accounts: &[Pubkey], args: &[u8]) -> [u8; 32] {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(accounts.len() + 3);
        parts.push(b"perpool:");
        parts.push(name.as_bytes());
        for key in accounts {
            parts.push(key.as_ref());
        }
        parts.push(args);
        hashv(&parts).to_bytes()
    }

    /// Records `signer`'s approval of `hash` (a different hash starts a new round).
    /// Returns the number of approvals now recorded.
    pub fn approve(&mut self, signer: &Pubkey, hash: [u8; 32]) -> Result<u8> {
        let index = self.signer_index(signer)?;
        if self.instruction_hash != hash {
            self.reset();
            self.instruction_hash = hash;
        }
        require!(!self.signed[index], PerpoolError::AlreadySigned);
        self.signed[index] = true;
        self.num_signed = self.num_signed.checked_add(1).ok_or(PerpoolError::MathOverflow)?;
        Ok(self.num_signed)
    }

    /// Lets the admin instruction with `hash`, sent by `signer`, execute: the recorded approvals
    /// of that hash plus the sender must reach the threshold. Clears the round.
    pub fn authorize(&mut self, signer: &Pubkey, hash: [u8; 32]) -> Result<()> {
        let index = self.signer_index(signer)?;
        let mut approvals: u8 = 1;
        if self.instruction_hash == hash {
            for (i, signed) in self.signed[..usize::from(self.num_signers)].iter().enumerate() {
                if *signed && i != index {
                    approvals = approvals.checked_add(1).ok_or(PerpoolError::MathOverflow)?;
                }
            }
        }
        require!(approvals >= self.min_signatures, PerpoolError::NotEnoughApprovals);
        self.reset();
        Ok(())
    }
}
