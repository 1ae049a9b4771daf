//! The ledger of the localnet: a chain of real Agave `Bank`s advanced on a timer.
//!
//! `working` is the open bank transactions land in (commitment `processed`); `frozen` is the
//! last completed bank (`confirmed` and `finalized`: a one-node localnet has nothing to wait
//! for, so a slot is final as soon as it is frozen). Everything lives in memory.

use {
    crate::native,
    solana_account::{AccountSharedData, ReadableAccount},
    solana_account_decoder::parse_token::token_amount_to_ui_amount_v3,
    solana_account_decoder::parse_account_data::SplTokenAdditionalDataV2,
    solana_clock::{Slot, UnixTimestamp, MAX_PROCESSING_AGE},
    solana_commitment_config::CommitmentLevel,
    solana_genesis_config::{ClusterType, GenesisConfig},
    solana_hash::Hash,
    solana_keypair::Keypair,
    solana_message::{v0::LoadedAddresses, SanitizedMessage},
    solana_pubkey::Pubkey,
    solana_rent::Rent,
    solana_runtime::{
        bank::{Bank, TransactionSimulationResult},
        bank_forks::BankForks,
        genesis_utils::create_genesis_config_with_leader_ex,
        runtime_config::RuntimeConfig,
    },
    solana_runtime_transaction::runtime_transaction::RuntimeTransaction,
    solana_signature::Signature,
    solana_signer::Signer,
    solana_svm::{
        transaction_balances::SvmTokenInfo,
        transaction_processor::ExecutionRecordingConfig,
    },
    solana_timings::ExecuteTimings,
    solana_transaction::{
        sanitized::SanitizedTransaction, versioned::VersionedTransaction, Transaction,
    },
    solana_transaction_error::TransactionError,
    solana_transaction_status::{
        map_inner_instructions, Reward, TransactionStatusMeta, TransactionTokenBalance,
    },
    std::{
        collections::{BTreeMap, HashMap, VecDeque},
        sync::{
            atomic::{AtomicI64, Ordering},
            mpsc, Arc, Mutex, MutexGuard, OnceLock, RwLock,
        },
        time::{Instant, SystemTime, UNIX_EPOCH},
    },
};

/// Lamports the faucet starts with (500 million SOL).
const FAUCET_LAMPORTS: u64 = 500_000_000 * 1_000_000_000;
/// Fee per signature, as on mainnet and solana-test-validator.
pub const LAMPORTS_PER_SIGNATURE: u64 = 5_000;
/// Completed blocks kept for block queries.
const BLOCKS_KEPT: usize = 100_000;
/// Beyond this many, warped slots are skipped rather than produced: every older blockhash
/// has expired by then (150 blocks).
const WARP_REAL_BLOCKS: u64 = 300;
/// How often rooted account writes are flushed out of the in-memory write cache.
const FLUSH_EVERY_SLOTS: u64 = 64;
/// Performance samples: one per minute, the last 12 hours kept (as Agave's RPC).
const SAMPLE_PERIOD_SECS: u16 = 60;
const SAMPLES_KEPT: usize = 720;

pub struct TxRecord {
    pub slot: Slot,
    pub signature: Signature,
    pub transaction: VersionedTransaction,
    pub meta: TransactionStatusMeta,
    /// Every account the transaction references (static keys, then loaded addresses).
    pub account_keys: Vec<Pubkey>,
    /// Whether the account at the same index was locked for writing.
    pub writable: Vec<bool>,
}

impl TxRecord {
    pub fn writable_keys(&self) -> impl Iterator<Item = &Pubkey> {
        self.account_keys
            .iter()
            .zip(&self.writable)
            .filter(|(_, w)| **w)
            .map(|(k, _)| k)
    }
}

#[derive(Clone)]
pub struct BlockRecord {
    pub slot: Slot,
    pub parent_slot: Slot,
    pub block_height: u64,
    pub blockhash: Hash,
    pub previous_blockhash: Hash,
    pub block_time: UnixTimestamp,
    pub signatures: Vec<Signature>,
    pub rewards: Vec<Reward>,
}

/// What the chain reports to observers (the pubsub notifier).
pub enum ChainEvent {
    /// A transaction was committed in the working bank (commitment `processed`).
    Processed { bank: Arc<Bank>, record: Arc<TxRecord> },
    /// `bank` was frozen and rooted with these transactions (`confirmed` and `finalized`);
    /// `next_slot` is the slot of the new working bank.
    Frozen {
        bank: Arc<Bank>,
        records: Vec<Arc<TxRecord>>,
        next_slot: Slot,
    },
}

/// One entry of getRecentPerformanceSamples.
#[derive(Clone, Copy)]
pub struct PerfSample {
    pub slot: Slot,
    pub num_transactions: u64,
    pub num_slots: u64,
    pub sample_period_secs: u16,
}

pub struct ChainConfig {
    pub faucet: Keypair,
    pub accounts: Vec<(Pubkey, AccountSharedData)>,
}

pub struct Chain {
    /// Serializes everything that runs program code or changes banks: execution, simulation,
    /// slot transitions and sysvar edits (program output capture relies on it).
    exec: Mutex<Vec<Signature>>,
    /// The runtime's fork tree (the program cache needs it); here always a single chain.
    forks: Arc<RwLock<BankForks>>,
    working: RwLock<Arc<Bank>>,
    frozen: RwLock<Arc<Bank>>,
    txs: RwLock<HashMap<Signature, Arc<TxRecord>>>,
    blocks: RwLock<BTreeMap<Slot, BlockRecord>>,
    /// Signatures that reference each address, oldest first.
    by_address: RwLock<HashMap<Pubkey, Vec<Signature>>>,
    events: OnceLock<mpsc::Sender<ChainEvent>>,
    samples: Mutex<Samples>,
    /// Seconds added to wall-clock time for the Clock sysvar (time control).
    time_offset: AtomicI64,
    pub faucet: Keypair,
    pub genesis_hash: Hash,
    pub identity: Pubkey,
}

struct Samples {
    list: VecDeque<PerfSample>,
    started: Instant,
    start_slot: Slot,
    start_transactions: u64,
}

pub fn wall_clock() -> UnixTimestamp {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn genesis(faucet: &Pubkey, identity: &Pubkey, accounts: Vec<(Pubkey, AccountSharedData)>) -> GenesisConfig {
    let rent = Rent::default();
    let mut fee_rate_governor = solana_fee_calculator::FeeRateGovernor::new(LAMPORTS_PER_SIGNATURE, 0);
    fee_rate_governor.burn_percent = 50;
    let stake = rent.minimum_balance(solana_vote_interface::state::VoteState::size_of())
        + 1_000_000 * 1_000_000_000;
    let mut config = create_genesis_config_with_leader_ex(
        FAUCET_LAMPORTS,
        faucet,
        identity,
        &Pubkey::new_unique(),
        &Pubkey::new_unique(),
        stake,
        42,
        fee_rate_governor,
        rent,
        ClusterType::Development,
        accounts,
    );
    config.creation_time = wall_clock();
    // Long epochs without warmup, like solana-test-validator's defaults.
    config.epoch_schedule = solana_epoch_schedule::EpochSchedule::without_warmup();
    config
}

impl Chain {
    pub fn new(cfg: ChainConfig) -> Arc<Self> {
        let identity = Pubkey::new_unique();
        let genesis_config = genesis(&cfg.faucet.pubkey(), &identity, Vec::new());
        let bank = Bank::new_with_paths(
            &genesis_config,
            Arc::new(RuntimeConfig::default()),
            Vec::new(),
            None,
            None,
            false,
            None,
            None,
            None,
            Arc::default(),
            None,
            None,
        );
        let rent = Rent::default();
        for (program_id, account) in solana_program_test::programs::spl_programs(&rent) {
            bank.store_account(&program_id, &account);
        }
        for (program_id, account) in
            solana_program_test::programs::core_bpf_programs(&rent, |feature_id| {
                genesis_config.accounts.contains_key(feature_id)
            })
        {
            bank.store_account(&program_id, &account);
        }
        let (program_id, name, builtin) = native::perpool_program();
        bank.add_builtin(program_id, name, builtin);
        for (address, account) in &cfg.accounts {
            bank.store_account(address, account);
        }
        bank.set_capitalization();
        let genesis_hash = genesis_config.hash();

        let forks = BankForks::new_rw_arc(bank);
        let root = forks.read().unwrap().root_bank();
        root.fill_bank_with_ticks_for_tests();
        root.freeze();
        let child = Bank::new_from_parent(root.clone(), &identity, 1);
        let child = forks.write().unwrap().insert(child).clone_without_scheduler();
        let chain = Arc::new(Self {
            exec: Mutex::new(Vec::new()),
            forks,
            working: RwLock::new(child),
            frozen: RwLock::new(root.clone()),
            txs: RwLock::new(HashMap::new()),
            blocks: RwLock::new(BTreeMap::new()),
            by_address: RwLock::new(HashMap::new()),
            events: OnceLock::new(),
            samples: Mutex::new(Samples {
                list: VecDeque::new(),
                started: Instant::now(),
                start_slot: root.slot(),
                start_transactions: 0,
            }),
            time_offset: AtomicI64::new(0),
            faucet: cfg.faucet,
            genesis_hash,
            identity,
        });
        chain.record_block(&root, Vec::new());
        chain.refresh_clock(&chain.working_bank(), root.clock().unix_timestamp);
        chain
    }

    /// Locks execution; a panic in one request must not take the whole node down with it.
    fn lock_exec(&self) -> MutexGuard<'_, Vec<Signature>> {
        self.exec.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn working_bank(&self) -> Arc<Bank> {
        self.working.read().unwrap().clone()
    }

    pub fn frozen_bank(&self) -> Arc<Bank> {
        self.frozen.read().unwrap().clone()
    }

    pub fn bank(&self, commitment: CommitmentLevel) -> Arc<Bank> {
        match commitment {
            CommitmentLevel::Processed => self.working_bank(),
            _ => self.frozen_bank(),
        }
    }

    fn record_block(&self, bank: &Bank, signatures: Vec<Signature>) {
        let record = BlockRecord {
            slot: bank.slot(),
            parent_slot: bank.parent_slot(),
            block_height: bank.block_height(),
            blockhash: bank.last_blockhash(),
            // The parent block's blockhash (the genesis block has none).
            previous_blockhash: self
                .blocks
                .read()
                .unwrap()
                .get(&bank.parent_slot())
                .filter(|_| bank.slot() > 0)
                .map(|parent| parent.blockhash)
                .unwrap_or_default(),
            block_time: bank.clock().unix_timestamp,
            signatures,
            rewards: bank
                .rewards
                .read()
                .unwrap()
                .iter()
                .map(|(pubkey, info)| Reward {
                    pubkey: pubkey.to_string(),
                    lamports: info.lamports,
                    post_balance: info.post_balance,
                    reward_type: Some(info.reward_type),
                    commission: info.commission,
                })
                .collect(),
        };
        let mut blocks = self.blocks.write().unwrap();
        blocks.insert(record.slot, record);
        while blocks.len() > BLOCKS_KEPT {
            blocks.pop_first();
        }
    }

    pub fn block(&self, slot: Slot) -> Option<BlockRecord> {
        self.blocks.read().unwrap().get(&slot).cloned()
    }

    pub fn blocks_in(&self, start: Slot, end: Slot) -> Vec<Slot> {
        if start > end {
            return Vec::new();
        }
        self.blocks.read().unwrap().range(start..=end).map(|(s, _)| *s).collect()
    }

    /// The first completed block at or after `slot`.
    pub fn first_block_from(&self, slot: Slot) -> Option<BlockRecord> {
        self.blocks.read().unwrap().range(slot..).next().map(|(_, b)| b.clone())
    }

    /// Runs `f` on the signatures referencing `address`, oldest first.
    pub fn with_signatures_for<R>(&self, address: &Pubkey, f: impl FnOnce(&[Signature]) -> R) -> R {
        let index = self.by_address.read().unwrap();
        f(index.get(address).map(Vec::as_slice).unwrap_or_default())
    }

    /// Starts delivering chain events to the returned receiver (one observer at most).
    pub fn events(&self) -> Option<mpsc::Receiver<ChainEvent>> {
        let (sender, receiver) = mpsc::channel();
        self.events.set(sender).ok().map(|_| receiver)
    }

    fn emit(&self, event: ChainEvent) {
        if let Some(sender) = self.events.get() {
            let _ = sender.send(event);
        }
    }

    pub fn performance_samples(&self) -> Vec<PerfSample> {
        self.samples.lock().unwrap().list.iter().rev().copied().collect()
    }

    fn sample(&self, bank: &Bank) {
        let mut samples = self.samples.lock().unwrap();
        if samples.started.elapsed().as_secs() < u64::from(SAMPLE_PERIOD_SECS) {
            return;
        }
        let sample = PerfSample {
            slot: bank.slot(),
            num_transactions: bank.transaction_count().saturating_sub(samples.start_transactions),
            num_slots: bank.slot().saturating_sub(samples.start_slot),
            sample_period_secs: SAMPLE_PERIOD_SECS,
        };
        samples.list.push_back(sample);
        if samples.list.len() > SAMPLES_KEPT {
            samples.list.pop_front();
        }
        samples.started = Instant::now();
        samples.start_slot = bank.slot();
        samples.start_transactions = bank.transaction_count();
    }

    pub fn first_block(&self) -> Slot {
        self.blocks.read().unwrap().keys().next().copied().unwrap_or_default()
    }

    /// Sets the Clock of a new bank to wall time plus the configured offset, never earlier
    /// than its parent's (the runtime's own estimate would drift with skipped slots).
    fn refresh_clock(&self, bank: &Bank, parent_timestamp: UnixTimestamp) {
        let mut clock = bank.clock();
        let target = wall_clock() + self.time_offset.load(Ordering::SeqCst);
        clock.unix_timestamp = target.max(parent_timestamp);
        bank.set_sysvar_for_tests(&clock);
    }

    /// Freezes the working bank and opens its child `1 + skip` slots later.
    pub fn advance_slot(&self, skip: u64) {
        let mut pending = self.lock_exec();
        let bank = self.working_bank();
        bank.fill_bank_with_ticks_for_tests();
        bank.freeze();
        let child = Bank::new_from_parent(bank.clone(), &self.identity, bank.slot() + 1 + skip);
        let child = self.forks.write().unwrap().insert(child).clone_without_scheduler();
        self.refresh_clock(&child, bank.clock().unix_timestamp);
        if let Err(e) = self.forks.write().unwrap().set_root(bank.slot(), None, None) {
            log::error!("set_root({}) failed: {e:?}", bank.slot());
        }
        if bank.slot().is_multiple_of(FLUSH_EVERY_SLOTS) {
            bank.flush_accounts_cache_if_needed();
        }
        let signatures = std::mem::take(&mut *pending);
        let records = {
            let txs = self.txs.read().unwrap();
            signatures.iter().filter_map(|s| txs.get(s).cloned()).collect()
        };
        self.record_block(&bank, signatures);
        self.sample(&bank);
        *self.frozen.write().unwrap() = bank.clone();
        let next_slot = child.slot();
        *self.working.write().unwrap() = child;
        self.emit(ChainEvent::Frozen { bank, records, next_slot });
    }

    /// Moves the Clock forward by `seconds` (effective for the next transaction).
    pub fn advance_clock(&self, seconds: i64) -> Result<(Slot, UnixTimestamp), String> {
        if seconds < 0 {
            return Err("the clock cannot move backwards".into());
        }
        let _guard = self.lock_exec();
        let bank = self.working_bank();
        let current = bank.clock().unix_timestamp;
        self.time_offset.fetch_add(seconds, Ordering::SeqCst);
        let mut clock = bank.clock();
        clock.unix_timestamp = current
            .checked_add(seconds)
            .ok_or_else(|| "timestamp overflow".to_string())?;
        bank.set_sysvar_for_tests(&clock);
        Ok((bank.slot(), clock.unix_timestamp))
    }

    /// Sets the Clock to `timestamp` (not earlier than the current one).
    pub fn set_clock(&self, timestamp: UnixTimestamp) -> Result<(Slot, UnixTimestamp), String> {
        let current = self.working_bank().clock().unix_timestamp;
        if timestamp < current {
            return Err(format!(
                "the clock cannot move backwards (current unix_timestamp {current})"
            ));
        }
        self.advance_clock(timestamp - current)
    }

    /// Advances `slots` slots. Up to `WARP_REAL_BLOCKS` of them become real blocks (block
    /// height and blockhash age advance as on a cluster, so blockhashes expire); the rest are
    /// skipped slots.
    pub fn warp_slots(&self, slots: u64) -> (Slot, UnixTimestamp) {
        let blocks = slots.min(WARP_REAL_BLOCKS);
        for _ in 1..blocks {
            self.advance_slot(0);
        }
        if blocks > 0 {
            self.advance_slot(slots - blocks);
        }
        let bank = self.working_bank();
        (bank.slot(), bank.clock().unix_timestamp)
    }

    pub fn sanitize(
        bank: &Bank,
        tx: VersionedTransaction,
        verify_signatures: bool,
    ) -> Result<RuntimeTransaction<SanitizedTransaction>, TransactionError> {
        use solana_transaction::TransactionVerificationMode as Mode;
        let mode = if verify_signatures { Mode::FullVerification } else { Mode::HashOnly };
        bank.verify_transaction(tx, mode)
    }

    pub fn simulate(
        &self,
        bank: &Bank,
        tx: &RuntimeTransaction<SanitizedTransaction>,
    ) -> TransactionSimulationResult {
        let _guard = self.lock_exec();
        bank.simulate_transaction_unchecked(tx, true)
    }

    /// Executes and commits a transaction in the working bank. `Err` means it was not
    /// committed (no fee charged); a committed transaction may still have failed.
    pub fn process(&self, tx: VersionedTransaction) -> Result<Arc<TxRecord>, TransactionError> {
        let mut pending = self.lock_exec();
        let bank = self.working_bank();
        let sanitized = Self::sanitize(&bank, tx.clone(), true)?;
        let batch = bank.prepare_sanitized_batch(std::slice::from_ref(&sanitized));
        let (mut results, balances) = bank.load_execute_and_commit_transactions(
            &batch,
            MAX_PROCESSING_AGE,
            ExecutionRecordingConfig {
                enable_cpi_recording: true,
                enable_log_recording: true,
                enable_return_data_recording: true,
                enable_transaction_balance_recording: true,
            },
            &mut ExecuteTimings::default(),
            None,
        );
        drop(batch);
        let committed = results.remove(0)?;
        let (pre_balances, post_balances, pre_tokens, post_tokens) = match balances {
            Some(b) => {
                let (mut a, mut b2, mut c, mut d) = b.into_vecs();
                (a.remove(0), b2.remove(0), c.remove(0), d.remove(0))
            }
            None => Default::default(),
        };
        let loaded_addresses = match sanitized.message() {
            SanitizedMessage::V0(m) => m.loaded_addresses.clone().into_owned(),
            SanitizedMessage::Legacy(_) => LoadedAddresses::default(),
        };
        let meta = TransactionStatusMeta {
            status: committed.status.clone(),
            fee: committed.fee_details.total_fee(),
            pre_balances,
            post_balances,
            inner_instructions: committed
                .inner_instructions
                .map(|list| map_inner_instructions(list).collect()),
            log_messages: committed.log_messages,
            pre_token_balances: Some(token_balances(pre_tokens)),
            post_token_balances: Some(token_balances(post_tokens)),
            rewards: Some(Vec::new()),
            loaded_addresses,
            return_data: committed.return_data,
            compute_units_consumed: Some(committed.executed_units),
            cost_units: None,
        };
        let signature = *sanitized.signature();
        let keys = sanitized.message().account_keys();
        let account_keys: Vec<Pubkey> = keys.iter().copied().collect();
        let writable = (0..account_keys.len()).map(|i| sanitized.message().is_writable(i)).collect();
        let record = Arc::new(TxRecord {
            slot: bank.slot(),
            signature,
            transaction: tx,
            meta,
            account_keys,
            writable,
        });
        self.txs.write().unwrap().insert(signature, record.clone());
        {
            let mut index = self.by_address.write().unwrap();
            let mut seen = std::collections::HashSet::new();
            for key in &record.account_keys {
                if seen.insert(*key) {
                    index.entry(*key).or_default().push(signature);
                }
            }
        }
        pending.push(signature);
        self.emit(ChainEvent::Processed { bank, record: record.clone() });
        Ok(record)
    }

    pub fn transaction(&self, signature: &Signature) -> Option<Arc<TxRecord>> {
        self.txs.read().unwrap().get(signature).cloned()
    }

    /// Block time of a completed slot.
    pub fn block_time(&self, slot: Slot) -> Option<UnixTimestamp> {
        self.blocks.read().unwrap().get(&slot).map(|b| b.block_time)
    }

    /// Signs and lands a faucet transfer.
    pub fn airdrop(&self, to: &Pubkey, lamports: u64) -> Result<Signature, TransactionError> {
        let mut last_err = TransactionError::AlreadyProcessed;
        // An identical request within one blockhash has the same signature; the next slot's
        // blockhash makes it a new transaction, as with a real faucet.
        for _ in 0..3 {
            let blockhash = self.working_bank().last_blockhash();
            let ix = solana_system_interface::instruction::transfer(&self.faucet.pubkey(), to, lamports);
            let tx = Transaction::new_signed_with_payer(
                &[ix],
                Some(&self.faucet.pubkey()),
                &[&self.faucet],
                blockhash,
            );
            let signature = tx.signatures[0];
            match self.process(VersionedTransaction::from(tx)) {
                Ok(record) => {
                    return match &record.meta.status {
                        Ok(()) => Ok(signature),
                        Err(err) => Err(err.clone()),
                    }
                }
                Err(TransactionError::AlreadyProcessed) => {
                    last_err = TransactionError::AlreadyProcessed;
                    self.wait_for_new_blockhash(blockhash);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_err)
    }

    fn wait_for_new_blockhash(&self, old: Hash) {
        for _ in 0..200 {
            if self.working_bank().last_blockhash() != old {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn get_account(&self, bank: &Bank, address: &Pubkey) -> Option<AccountSharedData> {
        bank.get_account(address).filter(|a| a.lamports() > 0)
    }
}

fn token_balances(infos: Vec<SvmTokenInfo>) -> Vec<TransactionTokenBalance> {
    infos
        .into_iter()
        .map(|info| TransactionTokenBalance {
            account_index: info.account_index,
            mint: info.mint.to_string(),
            ui_token_amount: token_amount_to_ui_amount_v3(
                info.amount,
                &SplTokenAdditionalDataV2::with_decimals(info.decimals),
            ),
            owner: info.owner.to_string(),
            program_id: info.program_id.to_string(),
        })
        .collect()
}
