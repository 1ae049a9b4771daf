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

#[cfg(test)]
mod tests {
    use super::*;

    fn multisig(signers: &[Pubkey], min: u8) -> Multisig {
        let mut m = Multisig {
            num_signers: 0,
            min_signatures: 0,
            num_signed: 0,
            signers: [Pubkey::default(); MAX_SIGNERS],
            signed: [false; MAX_SIGNERS],
            instruction_hash: [0; 32],
            bump: 0,
        };
        m.set_signers(signers, min).unwrap();
        m
    }

    fn code(result: Result<impl std::fmt::Debug>) -> u32 {
        match result.unwrap_err() {
            anchor_lang::error::Error::AnchorError(e) => e.error_code_number,
            other => panic!("unexpected error {other:?}"),
        }
    }

    fn number(err: PerpoolError) -> u32 {
        anchor_lang::error::ERROR_CODE_OFFSET + err as u32
    }

    #[test]
    fn signer_set_is_validated() {
        let keys: Vec<Pubkey> = (0..7).map(|_| Pubkey::new_unique()).collect();
        let mut m = multisig(&keys[..3], 2);
        assert_eq!(code(m.set_signers(&[], 1)), number(PerpoolError::InvalidMultisigConfig));
        assert_eq!(code(m.set_signers(&keys, 1)), number(PerpoolError::InvalidMultisigConfig));
        assert_eq!(code(m.set_signers(&keys[..2], 0)), number(PerpoolError::InvalidMultisigConfig));
        assert_eq!(code(m.set_signers(&keys[..2], 3)), number(PerpoolError::InvalidMultisigConfig));
        assert_eq!(code(m.set_signers(&[keys[0], keys[0]], 1)), number(PerpoolError::InvalidMultisigConfig));
        m.set_signers(&keys[..6], 6).unwrap();
        assert_eq!((m.num_signers, m.min_signatures), (6, 6));
    }

    #[test]
    fn two_of_three_needs_another_signers_approval_of_the_same_hash() {
        let keys: Vec<Pubkey> = (0..3).map(|_| Pubkey::new_unique()).collect();
        let stranger = Pubkey::new_unique();
        let h = Multisig::instruction_hash("set_permissions", &[keys[0]], &[1, 0]);
        let other = Multisig::instruction_hash("set_permissions", &[keys[0]], &[0, 1]);
        let mut m = multisig(&keys, 2);

        assert_eq!(code(m.authorize(&keys[0], h)), number(PerpoolError::NotEnoughApprovals));
        // The sender's own recorded approval is not a second one.
        assert_eq!(m.approve(&keys[0], h).unwrap(), 1);
        assert_eq!(code(m.authorize(&keys[0], h)), number(PerpoolError::NotEnoughApprovals));
        assert_eq!(code(m.approve(&keys[0], h)), number(PerpoolError::AlreadySigned));
        // An approval of different arguments does not count.
        let mut m = multisig(&keys, 2);
        m.approve(&keys[1], other).unwrap();
        assert_eq!(code(m.authorize(&keys[0], h)), number(PerpoolError::NotEnoughApprovals));
        // Strangers can neither approve nor execute.
        assert_eq!(code(m.approve(&stranger, h)), number(PerpoolError::NotAMultisigSigner));
        assert_eq!(code(m.authorize(&stranger, h)), number(PerpoolError::NotAMultisigSigner));
        // Approving a new hash starts a new round; the matching approval then authorizes once.
        assert_eq!(m.approve(&keys[1], h).unwrap(), 1);
        m.authorize(&keys[0], h).unwrap();
        assert_eq!(m.num_signed, 0);
        assert_eq!(code(m.authorize(&keys[0], h)), number(PerpoolError::NotEnoughApprovals));
    }

    #[test]
    fn one_of_one_executes_alone() {
        let key = Pubkey::new_unique();
        let mut m = multisig(&[key], 1);
        m.authorize(&key, [7; 32]).unwrap();
    }

    #[test]
    fn hash_binds_name_accounts_and_args() {
        let a = Pubkey::new_unique();
        let b = Pubkey::new_unique();
        let base = Multisig::instruction_hash("remove_custody", &[a, b], &[]);
        assert_ne!(base, Multisig::instruction_hash("remove_pool", &[a, b], &[]));
        assert_ne!(base, Multisig::instruction_hash("remove_custody", &[b, a], &[]));
        assert_ne!(base, Multisig::instruction_hash("remove_custody", &[a], &[]));
        assert_ne!(base, Multisig::instruction_hash("remove_custody", &[a, b], &[0]));
    }
}
