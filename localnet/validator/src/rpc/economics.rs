//! Cluster and economics: getClusterNodes, getVoteAccounts, getInflationGovernor,
//! getInflationRate, getInflationReward, getSupply, getLargestAccounts,
//! getStakeMinimumDelegation, getRecentPerformanceSamples.

use {
    super::{context_response, params::*, Rpc},
    serde_json::{json, Value},
    solana_accounts_db::accounts::AccountAddressFilter,
    solana_rpc_client_api::{
        config::{
            RpcContextConfig, RpcEpochConfig, RpcGetVoteAccountsConfig, RpcLargestAccountsConfig,
            RpcLargestAccountsFilter, RpcSupplyConfig,
        },
        custom_error::RpcCustomError,
        response::{
            RpcAccountBalance, RpcContactInfo, RpcInflationGovernor, RpcInflationRate,
            RpcInflationReward, RpcPerfSample, RpcSupply, RpcVoteAccountInfo, RpcVoteAccountStatus,
        },
    },
    solana_reward_info::RewardType,
    solana_runtime::non_circulating_supply::calculate_non_circulating_supply,
    std::collections::HashSet,
};

/// getRecentPerformanceSamples answers at most this many samples.
const MAX_PERF_SAMPLES: usize = 720;
/// getInflationReward accepts at most this many addresses.
const MAX_INFLATION_REWARD_ADDRESSES: usize = 100;
/// getLargestAccounts answers this many accounts.
const LARGEST_ACCOUNTS: usize = 20;
/// getVoteAccounts reports at most this many epochs of credits per account.
const MAX_EPOCH_CREDITS_HISTORY: usize = 5;

fn to_value<T: serde::Serialize>(value: T) -> RpcResult {
    serde_json::to_value(value).map_err(|e| internal_error(e.to_string()))
}

impl Rpc {
    pub fn get_cluster_nodes(&self) -> RpcResult {
        let version = solana_version::Version::default();
        let node = RpcContactInfo {
            pubkey: self.chain.identity.to_string(),
            gossip: None,
            tvu: None,
            tpu: None,
            tpu_quic: None,
            tpu_forwards: None,
            tpu_forwards_quic: None,
            tpu_vote: None,
            serve_repair: None,
            rpc: Some(self.rpc_addr),
            pubsub: self.pubsub_addr,
            version: Some(version.to_string()),
            feature_set: Some(version.feature_set),
            shred_version: Some(solana_shred_version::compute_shred_version(&self.chain.genesis_hash, None)),
        };
        to_value(vec![node])
    }

    pub fn get_vote_accounts(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcGetVoteAccountsConfig = p.optional(0)?.unwrap_or_default();
        let filter = match &config.vote_pubkey {
            Some(text) => Some(parse_pubkey(text)?),
            None => None,
        };
        let bank = self.bank_for(config.commitment, None)?;
        let epoch_vote_accounts = bank.epoch_vote_accounts(bank.epoch());
        let mut current = Vec::new();
        for (vote_pubkey, (stake, account)) in bank.vote_accounts().iter() {
            if filter.is_some_and(|f| f != *vote_pubkey) {
                continue;
            }
            let view = account.vote_state_view();
            let credits: Vec<_> = view
                .epoch_credits_iter()
                .map(|c| (c.epoch(), c.credits(), c.prev_credits()))
                .collect();
            let skip = credits.len().saturating_sub(MAX_EPOCH_CREDITS_HISTORY);
            // The node votes for every slot it produces (it is the whole cluster), so its
            // vote account is current: its last vote and root are the latest frozen slot.
            let latest = self.chain.frozen_bank().slot();
            current.push(RpcVoteAccountInfo {
                vote_pubkey: vote_pubkey.to_string(),
                node_pubkey: account.node_pubkey().to_string(),
                activated_stake: *stake,
                commission: view.commission(),
                epoch_vote_account: epoch_vote_accounts.is_some_and(|m| m.contains_key(vote_pubkey)),
                epoch_credits: credits.into_iter().skip(skip).collect(),
                last_vote: view.last_voted_slot().unwrap_or(latest).max(latest),
                root_slot: view.root_slot().unwrap_or(latest).max(latest),
            });
        }
        if let Some(key) = filter {
            if current.is_empty() {
                return Err(invalid_params(format!("Invalid param: vote account {key} not found")));
            }
        }
        to_value(RpcVoteAccountStatus { current, delinquent: Vec::new() })
    }

    pub fn get_inflation_governor(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcContextConfig = p.optional(0)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, None)?;
        to_value(RpcInflationGovernor::from(bank.inflation()))
    }

    pub fn get_inflation_rate(&self) -> RpcResult {
        let bank = self.chain.frozen_bank();
        let inflation = bank.inflation();
        let slot_in_year = bank.slot_in_year_for_inflation();
        to_value(RpcInflationRate {
            total: inflation.total(slot_in_year),
            validator: inflation.validator(slot_in_year),
            foundation: inflation.foundation(slot_in_year),
            epoch: bank.epoch(),
        })
    }

    pub fn get_inflation_reward(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let addresses: Vec<String> = p.required(0, "addresses")?;
        if addresses.len() > MAX_INFLATION_REWARD_ADDRESSES {
            return Err(invalid_params(format!("Too many inputs provided; max {MAX_INFLATION_REWARD_ADDRESSES}")));
        }
        let addresses = addresses.iter().map(|a| parse_pubkey(a)).collect::<Result<Vec<_>, _>>()?;
        let config: RpcEpochConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let epoch = config.epoch.unwrap_or_else(|| bank.epoch().saturating_sub(1));
        // Rewards for an epoch are paid in the first block of the next one.
        let first_slot = bank.epoch_schedule().get_first_slot_in_epoch(epoch.saturating_add(1));
        let Some(block) = self.chain.first_block_from(first_slot) else {
            return Err(RpcCustomError::BlockNotAvailable { slot: first_slot }.into());
        };
        let values: Vec<Value> = addresses
            .iter()
            .map(|address| {
                let address = address.to_string();
                block
                    .rewards
                    .iter()
                    .find(|r| r.pubkey == address && matches!(r.reward_type, Some(RewardType::Staking | RewardType::Voting)))
                    .map(|r| {
                        json!(RpcInflationReward {
                            epoch,
                            effective_slot: block.slot,
                            amount: r.lamports.unsigned_abs(),
                            post_balance: r.post_balance,
                            commission: r.commission,
                        })
                    })
                    .unwrap_or(Value::Null)
            })
            .collect();
        Ok(Value::Array(values))
    }

    pub fn get_supply(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcSupplyConfig = p.optional(0)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, None)?;
        let non_circulating = calculate_non_circulating_supply(&bank)
            .map_err(|e| RpcCustomError::ScanError { message: e.to_string() })?;
        let total = bank.capitalization();
        let accounts = if config.exclude_non_circulating_accounts_list {
            Vec::new()
        } else {
            non_circulating.accounts.iter().map(|a| a.to_string()).collect()
        };
        let supply = RpcSupply {
            total,
            circulating: total.saturating_sub(non_circulating.lamports),
            non_circulating: non_circulating.lamports,
            non_circulating_accounts: accounts,
        };
        Ok(context_response(&bank, to_value(supply)?))
    }

    pub fn get_largest_accounts(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcLargestAccountsConfig = p.optional(0)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, None)?;
        let scan_error = |e: solana_accounts_db::accounts_index::ScanError| -> jsonrpc_core::Error {
            RpcCustomError::ScanError { message: e.to_string() }.into()
        };
        let (addresses, filter) = match config.filter {
            None => (HashSet::new(), AccountAddressFilter::Exclude),
            Some(kind) => {
                let non_circulating = calculate_non_circulating_supply(&bank).map_err(scan_error)?;
                let set: HashSet<_> = non_circulating.accounts.into_iter().collect();
                match kind {
                    RpcLargestAccountsFilter::Circulating => (set, AccountAddressFilter::Exclude),
                    RpcLargestAccountsFilter::NonCirculating => (set, AccountAddressFilter::Include),
                }
            }
        };
        let largest = bank
            .get_largest_accounts(LARGEST_ACCOUNTS, &addresses, filter, config.sort_results.unwrap_or(true))
            .map_err(scan_error)?;
        let list: Vec<RpcAccountBalance> = largest
            .into_iter()
            .map(|(address, lamports)| RpcAccountBalance { address: address.to_string(), lamports })
            .collect();
        Ok(context_response(&bank, to_value(list)?))
    }

    pub fn get_stake_minimum_delegation(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let config: RpcContextConfig = p.optional(0)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let raised = bank
            .feature_set
            .is_active(&agave_feature_set::stake_raise_minimum_delegation_to_1_sol::id());
        Ok(context_response(&bank, json!(solana_stake_program::get_minimum_delegation(raised))))
    }

    pub fn get_recent_performance_samples(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let limit: usize = p.optional(0)?.unwrap_or(MAX_PERF_SAMPLES);
        if limit > MAX_PERF_SAMPLES {
            return Err(invalid_params(format!("Invalid limit; max {MAX_PERF_SAMPLES}")));
        }
        let samples: Vec<RpcPerfSample> = self
            .chain
            .performance_samples()
            .into_iter()
            .take(limit)
            .map(|s| RpcPerfSample {
                slot: s.slot,
                num_transactions: s.num_transactions,
                num_non_vote_transactions: Some(s.num_transactions),
                num_slots: s.num_slots,
                sample_period_secs: s.sample_period_secs,
            })
            .collect();
        to_value(samples)
    }
}
