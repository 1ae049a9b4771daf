//! Solana JSON-RPC over HTTP.

pub mod accounts;
mod blocks;
mod cluster;
mod economics;
mod localnet;
pub mod params;
mod server;
mod signatures;
mod transactions;

pub use server::serve;

use {
    crate::chain::Chain,
    params::{Params, RpcResult},
    serde_json::{json, Value},
    solana_clock::Slot,
    solana_commitment_config::{CommitmentConfig, CommitmentLevel},
    solana_rpc_client_api::custom_error::RpcCustomError,
    solana_runtime::bank::Bank,
    std::{net::SocketAddr, sync::Arc},
};

pub struct Rpc {
    pub chain: Arc<Chain>,
    /// Addresses this node serves, for getClusterNodes.
    pub rpc_addr: SocketAddr,
    pub pubsub_addr: Option<SocketAddr>,
}

/// `{"context": {...}, "value": ...}`, the wrapper of most Solana RPC answers.
pub fn context_response(bank: &Bank, value: Value) -> Value {
    json!({
        "context": { "slot": bank.slot(), "apiVersion": solana_version::semver!() },
        "value": value,
    })
}

impl Rpc {
    /// The bank a request reads at its commitment (default `finalized`, as the real RPC).
    pub fn bank_for(&self, commitment: Option<CommitmentConfig>, min_context_slot: Option<Slot>) -> Result<Arc<Bank>, jsonrpc_core::Error> {
        let level = commitment.map(|c| c.commitment).unwrap_or(CommitmentLevel::Finalized);
        let bank = self.chain.bank(level);
        if let Some(min) = min_context_slot {
            if bank.slot() < min {
                return Err(RpcCustomError::MinContextSlotNotReached { context_slot: bank.slot() }.into());
            }
        }
        Ok(bank)
    }

    pub fn dispatch(&self, method: &str, params: Option<Value>) -> RpcResult {
        let p = &Params::parse(params)?;
        match method {
            "getHealth" => self.get_health(),
            "getVersion" => self.get_version(),
            "getGenesisHash" => self.get_genesis_hash(),
            "getIdentity" => self.get_identity(),
            "getEpochSchedule" => self.get_epoch_schedule(),
            "getFirstAvailableBlock" | "minimumLedgerSlot" => self.get_first_available_block(),
            "getLatestBlockhash" => self.get_latest_blockhash(p),
            "isBlockhashValid" => self.is_blockhash_valid(p),
            "getSlot" => self.get_slot(p),
            "getBlockHeight" => self.get_block_height(p),
            "getTransactionCount" => self.get_transaction_count(p),
            "getEpochInfo" => self.get_epoch_info(p),
            "getBlockTime" => self.get_block_time(p),
            "getBlocks" => self.get_blocks(p),
            "getBlocksWithLimit" => self.get_blocks_with_limit(p),
            "getAccountInfo" => self.get_account_info(p),
            "getMultipleAccounts" => self.get_multiple_accounts(p),
            "getProgramAccounts" => self.get_program_accounts(p),
            "getBalance" => self.get_balance(p),
            "getMinimumBalanceForRentExemption" => self.get_minimum_balance_for_rent_exemption(p),
            "getTokenAccountBalance" => self.get_token_account_balance(p),
            "getTokenSupply" => self.get_token_supply(p),
            "getTokenAccountsByOwner" => self.get_token_accounts_by_owner(p),
            "getTokenAccountsByDelegate" => self.get_token_accounts_by_delegate(p),
            "getTokenLargestAccounts" => self.get_token_largest_accounts(p),
            "getBlock" => self.get_block(p),
            "getBlockCommitment" => self.get_block_commitment(p),
            "getBlockProduction" => self.get_block_production(p),
            "getSlotLeader" => self.get_slot_leader(p),
            "getSlotLeaders" => self.get_slot_leaders(p),
            "getLeaderSchedule" => self.get_leader_schedule(p),
            "getMaxRetransmitSlot" => self.get_max_retransmit_slot(),
            "getMaxShredInsertSlot" => self.get_max_shred_insert_slot(),
            "getHighestSnapshotSlot" => self.get_highest_snapshot_slot(),
            "getClusterNodes" => self.get_cluster_nodes(),
            "getVoteAccounts" => self.get_vote_accounts(p),
            "getInflationGovernor" => self.get_inflation_governor(p),
            "getInflationRate" => self.get_inflation_rate(),
            "getInflationReward" => self.get_inflation_reward(p),
            "getSupply" => self.get_supply(p),
            "getLargestAccounts" => self.get_largest_accounts(p),
            "getStakeMinimumDelegation" => self.get_stake_minimum_delegation(p),
            "getRecentPerformanceSamples" => self.get_recent_performance_samples(p),
            "getSignaturesForAddress" => self.get_signatures_for_address(p),
            "sendTransaction" => self.send_transaction(p),
            "simulateTransaction" => self.simulate_transaction(p),
            "getSignatureStatuses" => self.get_signature_statuses(p),
            "getTransaction" => self.get_transaction(p),
            "requestAirdrop" => self.request_airdrop(p),
            "getFeeForMessage" => self.get_fee_for_message(p),
            "getRecentPrioritizationFees" => self.get_recent_prioritization_fees(p),
            "localnet_advanceClock" => self.advance_clock(p),
            "localnet_setClock" => self.set_clock(p),
            "localnet_warpSlots" => self.warp_slots(p),
            _ => Err(jsonrpc_core::Error::method_not_found()),
        }
    }
}
