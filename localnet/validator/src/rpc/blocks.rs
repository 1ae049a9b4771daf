//! Blocks and leaders: getBlock, getBlockCommitment, getBlockProduction, getSlotLeader(s),
//! getLeaderSchedule, getMaxRetransmitSlot, getMaxShredInsertSlot, getHighestSnapshotSlot.
//!
//! The node is the only leader: every slot of every epoch is its own, and it produced every
//! block of the ledger (skipped slots are the warped-over ones).

use {
    super::{context_response, params::*, Rpc},
    serde_json::{json, Value},
    solana_clock::Slot,
    solana_commitment_config::{CommitmentConfig, CommitmentLevel},
    solana_rpc_client_api::{
        config::{
            RpcBlockConfig, RpcBlockProductionConfig, RpcContextConfig, RpcEncodingConfigWrapper,
            RpcLeaderScheduleConfig, RpcLeaderScheduleConfigWrapper,
        },
        custom_error::RpcCustomError,
        response::{RpcBlockCommitment, RpcBlockProduction, RpcBlockProductionRange},
    },
    solana_transaction_status::{
        BlockEncodingOptions, ConfirmedBlock, EncodeError, TransactionDetails,
        TransactionWithStatusMeta, UiTransactionEncoding, VersionedTransactionWithStatusMeta,
    },
    std::collections::HashMap,
};

/// getSlotLeaders answers at most this many slots, as the real RPC does.
const MAX_GET_SLOT_LEADERS: u64 = 5000;

/// Rejects `processed`, which block and history methods do not support.
pub fn require_confirmed(commitment: Option<CommitmentConfig>) -> Result<(), jsonrpc_core::Error> {
    match commitment {
        Some(c) if c.commitment == CommitmentLevel::Processed => {
            Err(invalid_params("Method does not support commitment below `confirmed`"))
        }
        _ => Ok(()),
    }
}

impl Rpc {
    pub fn get_block(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let slot: Slot = p.required(0, "slot")?;
        let config = p
            .optional::<RpcEncodingConfigWrapper<RpcBlockConfig>>(1)?
            .map(|w| w.convert_to_current())
            .unwrap_or_default();
        require_confirmed(config.commitment)?;
        let first = self.chain.first_block();
        if slot < first {
            return Err(RpcCustomError::BlockCleanedUp { slot, first_available_block: first }.into());
        }
        let Some(block) = self.chain.block(slot) else {
            // Below the working slot a missing block is a skipped slot; from there on it is
            // yet to come.
            return Err(if slot < self.chain.working_bank().slot() {
                RpcCustomError::SlotSkipped { slot }.into()
            } else {
                RpcCustomError::BlockNotAvailable { slot }.into()
            });
        };
        let mut transactions = Vec::with_capacity(block.signatures.len());
        for signature in &block.signatures {
            let record = self
                .chain
                .transaction(signature)
                .ok_or_else(|| internal_error(format!("transaction {signature} of slot {slot} is missing")))?;
            transactions.push(TransactionWithStatusMeta::Complete(VersionedTransactionWithStatusMeta {
                transaction: record.transaction.clone(),
                meta: record.meta.clone(),
            }));
        }
        let confirmed = ConfirmedBlock {
            previous_blockhash: block.previous_blockhash.to_string(),
            blockhash: block.blockhash.to_string(),
            parent_slot: block.parent_slot,
            transactions,
            rewards: block.rewards.clone(),
            num_partitions: None,
            block_time: Some(block.block_time),
            block_height: Some(block.block_height),
        };
        let options = BlockEncodingOptions {
            transaction_details: config.transaction_details.unwrap_or(TransactionDetails::Full),
            show_rewards: config.rewards.unwrap_or(true),
            max_supported_transaction_version: config.max_supported_transaction_version,
        };
        match confirmed.encode_with_options(config.encoding.unwrap_or(UiTransactionEncoding::Json), options) {
            Ok(encoded) => Ok(serde_json::to_value(encoded).map_err(|e| internal_error(e.to_string()))?),
            Err(EncodeError::UnsupportedTransactionVersion(v)) => {
                Err(RpcCustomError::UnsupportedTransactionVersion(v).into())
            }
        }
    }

    pub fn get_block_commitment(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let _slot: Slot = p.required(0, "slot")?;
        // Every completed slot is rooted at once, and a rooted slot carries no commitment array.
        let commitment: RpcBlockCommitment<[u64; 32]> = RpcBlockCommitment {
            commitment: None,
            total_stake: self.chain.frozen_bank().total_epoch_stake(),
        };
        serde_json::to_value(commitment).map_err(|e| internal_error(e.to_string()))
    }

    pub fn get_block_production(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcBlockProductionConfig = p.optional(0)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, None)?;
        let epoch_start = bank.epoch_schedule().get_first_slot_in_epoch(bank.epoch());
        let (first_slot, last_slot) = match &config.range {
            Some(range) => (range.first_slot, range.last_slot.unwrap_or(bank.slot())),
            None => (epoch_start, bank.slot()),
        };
        if last_slot < first_slot {
            return Err(invalid_params(format!(
                "lastSlot, {last_slot}, cannot be less than firstSlot, {first_slot}"
            )));
        }
        if last_slot > bank.slot() {
            return Err(invalid_params(format!(
                "lastSlot, {last_slot}, cannot be greater than current slot, {}",
                bank.slot()
            )));
        }
        let identity = self.chain.identity.to_string();
        let mut by_identity = HashMap::new();
        if config.identity.as_deref().is_none_or(|i| i == identity) {
            let leader_slots = (last_slot - first_slot + 1) as usize;
            let mut produced = self.chain.blocks_in(first_slot, last_slot).len();
            if last_slot > self.chain.frozen_bank().slot() {
                produced += 1; // the working bank's block, in progress
            }
            by_identity.insert(identity, (leader_slots, produced));
        }
        let value = RpcBlockProduction {
            by_identity,
            range: RpcBlockProductionRange { first_slot, last_slot },
        };
        Ok(context_response(&bank, serde_json::to_value(value).map_err(|e| internal_error(e.to_string()))?))
    }

    pub fn get_slot_leader(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcContextConfig = p.optional(0)?.unwrap_or_default();
        self.bank_for(config.commitment, config.min_context_slot)?;
        Ok(json!(self.chain.identity.to_string()))
    }

    pub fn get_slot_leaders(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let start: Slot = p.required(0, "start_slot")?;
        let limit: u64 = p.required(1, "limit")?;
        if limit > MAX_GET_SLOT_LEADERS {
            return Err(invalid_params(format!("Invalid limit; max {MAX_GET_SLOT_LEADERS}")));
        }
        let bank = self.chain.working_bank();
        let epoch_schedule = bank.epoch_schedule();
        // As the real RPC: leaders are known for the current and the next epoch only.
        let known_until = epoch_schedule.get_last_slot_in_epoch(bank.epoch() + 1);
        let first_known = epoch_schedule.get_first_slot_in_epoch(bank.epoch());
        if start < first_known || start.saturating_add(limit.saturating_sub(1)) > known_until {
            return Err(invalid_params(format!(
                "Invalid slot range: leader schedule for epoch {} is unavailable",
                epoch_schedule.get_epoch(if start < first_known { start } else { start.saturating_add(limit) })
            )));
        }
        let leader = self.chain.identity.to_string();
        Ok(Value::Array((0..limit).map(|_| json!(leader)).collect()))
    }

    pub fn get_leader_schedule(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let (slot, first_config) = match p.optional::<RpcLeaderScheduleConfigWrapper>(0)? {
            Some(wrapper) => wrapper.unzip(),
            None => (None, None),
        };
        let config: RpcLeaderScheduleConfig = match p.optional::<RpcLeaderScheduleConfig>(1)? {
            Some(c) => c,
            None => first_config.unwrap_or_default(),
        };
        let bank = self.bank_for(config.commitment, None)?;
        let slot = slot.unwrap_or(bank.slot());
        let schedule = bank.epoch_schedule();
        let epoch = schedule.get_epoch(slot);
        if epoch > bank.epoch() + 1 {
            return Ok(Value::Null);
        }
        let identity = self.chain.identity.to_string();
        if config.identity.as_deref().is_some_and(|i| i != identity) {
            return Ok(json!({}));
        }
        let slots: Vec<u64> = (0..schedule.get_slots_in_epoch(epoch)).collect();
        Ok(json!({ identity: slots }))
    }

    pub fn get_max_retransmit_slot(&self) -> RpcResult {
        Ok(json!(self.chain.working_bank().slot()))
    }

    pub fn get_max_shred_insert_slot(&self) -> RpcResult {
        Ok(json!(self.chain.working_bank().slot()))
    }

    pub fn get_highest_snapshot_slot(&self) -> RpcResult {
        // State lives in memory only: there is never a snapshot archive.
        Err(RpcCustomError::NoSnapshot.into())
    }
}
