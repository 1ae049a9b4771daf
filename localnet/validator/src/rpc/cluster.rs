//! Node, slot, blockhash and epoch queries.

use {
    super::{context_response, params::*, Rpc},
    serde_json::{json, Value},
    solana_clock::Slot,
    solana_hash::Hash,
    solana_rpc_client_api::{config::RpcContextConfig, custom_error::RpcCustomError},
    std::str::FromStr,
};

/// getBlocks answers at most this many slots per call, as the real RPC does.
const MAX_GET_BLOCKS_RANGE: u64 = 500_000;

impl Rpc {
    fn context_bank(&self, p: &Params, index: usize) -> Result<std::sync::Arc<solana_runtime::bank::Bank>, jsonrpc_core::Error> {
        let config: RpcContextConfig = p.optional(index)?.unwrap_or_default();
        self.bank_for(config.commitment, config.min_context_slot)
    }

    pub fn get_health(&self) -> RpcResult {
        Ok(json!("ok"))
    }

    pub fn get_version(&self) -> RpcResult {
        let version = solana_version::Version::default();
        Ok(json!({
            "solana-core": solana_version::semver!(),
            "feature-set": version.feature_set,
        }))
    }

    pub fn get_latest_blockhash(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let bank = self.context_bank(p, 0)?;
        let blockhash = bank.last_blockhash();
        let last_valid = bank.get_blockhash_last_valid_block_height(&blockhash).unwrap_or_default();
        Ok(context_response(&bank, json!({
            "blockhash": blockhash.to_string(),
            "lastValidBlockHeight": last_valid,
        })))
    }

    pub fn is_blockhash_valid(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let text: String = p.required(0, "blockhash")?;
        let hash = Hash::from_str(&text).map_err(|_| invalid_params("Invalid param: Invalid blockhash"))?;
        let bank = self.context_bank(p, 1)?;
        Ok(context_response(&bank, json!(bank.is_blockhash_valid(&hash))))
    }

    pub fn get_slot(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        Ok(json!(self.context_bank(p, 0)?.slot()))
    }

    pub fn get_block_height(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        Ok(json!(self.context_bank(p, 0)?.block_height()))
    }

    pub fn get_transaction_count(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        Ok(json!(self.context_bank(p, 0)?.transaction_count()))
    }

    pub fn get_epoch_info(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let bank = self.context_bank(p, 0)?;
        let (epoch, slot_index) = bank.get_epoch_and_slot_index(bank.slot());
        Ok(json!({
            "absoluteSlot": bank.slot(),
            "blockHeight": bank.block_height(),
            "epoch": epoch,
            "slotIndex": slot_index,
            "slotsInEpoch": bank.epoch_schedule().get_slots_in_epoch(epoch),
            "transactionCount": bank.transaction_count(),
        }))
    }

    pub fn get_epoch_schedule(&self) -> RpcResult {
        let schedule = self.chain.frozen_bank().epoch_schedule().clone();
        Ok(json!({
            "slotsPerEpoch": schedule.slots_per_epoch,
            "leaderScheduleSlotOffset": schedule.leader_schedule_slot_offset,
            "warmup": schedule.warmup,
            "firstNormalEpoch": schedule.first_normal_epoch,
            "firstNormalSlot": schedule.first_normal_slot,
        }))
    }

    pub fn get_genesis_hash(&self) -> RpcResult {
        Ok(json!(self.chain.genesis_hash.to_string()))
    }

    pub fn get_identity(&self) -> RpcResult {
        Ok(json!({ "identity": self.chain.identity.to_string() }))
    }

    pub fn get_block_time(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let slot: Slot = p.required(0, "slot")?;
        self.chain
            .block_time(slot)
            .map(|t| json!(t))
            .ok_or_else(|| RpcCustomError::BlockNotAvailable { slot }.into())
    }

    pub fn get_first_available_block(&self) -> RpcResult {
        Ok(json!(self.chain.first_block()))
    }

    pub fn get_blocks(&self, p: &Params) -> RpcResult {
        p.at_most(3)?;
        let start: Slot = p.required(0, "start_slot")?;
        // The second parameter may be the end slot or, in its place, a commitment config.
        let end: Option<Slot> = match p.optional::<Value>(1)? {
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        let frozen = self.chain.frozen_bank().slot();
        let end = end.unwrap_or(frozen).min(frozen);
        if end >= start && end - start > MAX_GET_BLOCKS_RANGE {
            return Err(invalid_params(format!("Slot range too large; max {MAX_GET_BLOCKS_RANGE}")));
        }
        Ok(json!(self.chain.blocks_in(start, end)))
    }

    pub fn get_blocks_with_limit(&self, p: &Params) -> RpcResult {
        p.at_most(3)?;
        let start: Slot = p.required(0, "start_slot")?;
        let limit: usize = p.required(1, "limit")?;
        if limit as u64 > MAX_GET_BLOCKS_RANGE {
            return Err(invalid_params(format!("Limit too large; max {MAX_GET_BLOCKS_RANGE}")));
        }
        let frozen = self.chain.frozen_bank().slot();
        let mut slots = self.chain.blocks_in(start, frozen);
        slots.truncate(limit);
        Ok(json!(slots))
    }
}
