//! Transaction history by address: getSignaturesForAddress.

use {
    super::{blocks::require_confirmed, params::*, Rpc},
    solana_rpc_client_api::{
        config::RpcSignaturesForAddressConfig, custom_error::RpcCustomError,
        response::RpcConfirmedTransactionStatusWithSignature,
    },
    solana_transaction_status::{
        extract_and_fmt_memos, TransactionConfirmationStatus, VersionedTransactionWithStatusMeta,
    },
};

/// Most signatures one call returns, and the default.
const MAX_SIGNATURES: usize = 1000;

impl Rpc {
    pub fn get_signatures_for_address(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let address = p.pubkey(0, "address")?;
        let config: RpcSignaturesForAddressConfig = p.optional(1)?.unwrap_or_default();
        require_confirmed(config.commitment)?;
        let limit = config.limit.unwrap_or(MAX_SIGNATURES);
        if limit == 0 || limit > MAX_SIGNATURES {
            return Err(invalid_params(format!("Invalid limit; max {MAX_SIGNATURES}")));
        }
        let before = config.before.as_deref().map(parse_signature).transpose()?;
        let until = config.until.as_deref().map(parse_signature).transpose()?;
        let frozen = self.chain.frozen_bank().slot();
        if let Some(min) = config.min_context_slot {
            if frozen < min {
                return Err(RpcCustomError::MinContextSlotNotReached { context_slot: frozen }.into());
            }
        }
        // Newest first; `before` and `until` are exclusive bounds.
        let signatures = self.chain.with_signatures_for(&address, |all| {
            let mut newest_first = all.iter().rev().peekable();
            if let Some(before) = before {
                if !all.contains(&before) {
                    return Vec::new();
                }
                for signature in newest_first.by_ref() {
                    if *signature == before {
                        break;
                    }
                }
            }
            let mut out = Vec::new();
            for signature in newest_first {
                if Some(*signature) == until || out.len() == limit {
                    break;
                }
                out.push(*signature);
            }
            out
        });
        let mut list = Vec::with_capacity(signatures.len());
        for signature in signatures {
            let Some(record) = self.chain.transaction(&signature) else { continue };
            if record.slot > frozen {
                continue; // not yet confirmed
            }
            list.push(RpcConfirmedTransactionStatusWithSignature {
                signature: signature.to_string(),
                slot: record.slot,
                err: record.meta.status.clone().err(),
                memo: extract_and_fmt_memos(&VersionedTransactionWithStatusMeta {
                    transaction: record.transaction.clone(),
                    meta: record.meta.clone(),
                }),
                block_time: self.chain.block_time(record.slot),
                confirmation_status: Some(TransactionConfirmationStatus::Finalized),
            });
        }
        serde_json::to_value(list).map_err(|e| internal_error(e.to_string()))
    }
}
