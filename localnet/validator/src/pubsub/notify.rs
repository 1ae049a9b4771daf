//! Turning chain events into notifications.

use {
    super::{
        subscriptions::{notification, with_context, Kind, Registry, SubscriptionId},
        PubSub,
    },
    crate::{
        chain::{ChainEvent, TxRecord},
        rpc::accounts::{filter_allows, ui_account},
    },
    serde_json::{json, Value},
    solana_account::{AccountSharedData, ReadableAccount},
    solana_account_decoder::UiAccountEncoding,
    solana_clock::Slot,
    solana_commitment_config::CommitmentLevel,
    solana_pubkey::Pubkey,
    solana_rpc_client_api::{
        config::RpcAccountInfoConfig,
        filter::RpcFilterType,
        response::{ProcessedSignatureResult, RpcLogsResponse, RpcSignatureResult, SlotInfo},
    },
    solana_runtime::bank::Bank,
    std::collections::{HashMap, HashSet},
};

/// The account and the slot it was last written in; a missing account reads as the empty
/// default account at slot 0 (subscribers learn that it is gone).
pub fn account_state(bank: &Bank, pubkey: &Pubkey) -> (AccountSharedData, Slot) {
    bank.get_account_modified_slot(pubkey).unwrap_or_default()
}

pub fn encode(bank: &Bank, pubkey: &Pubkey, account: &AccountSharedData, config: &RpcAccountInfoConfig) -> Value {
    let encoding = config.encoding.unwrap_or(UiAccountEncoding::Binary);
    ui_account(bank, pubkey, account, encoding, config.data_slice)
}

/// What an account notification shows: the account and how it is encoded.
fn account_key(kind: &str, pubkey: &Pubkey, config: &RpcAccountInfoConfig) -> String {
    format!("{kind}{pubkey}{:?}{:?}", config.encoding, config.data_slice.map(|s| (s.offset, s.length)))
}

fn program_match(account: &AccountSharedData, program: &Pubkey, filters: &[RpcFilterType]) -> bool {
    account.owner() == program && filters.iter().all(|f| filter_allows(f, account))
}

fn keyed(bank: &Bank, pubkey: &Pubkey, account: &AccountSharedData, config: &RpcAccountInfoConfig) -> Value {
    json!({ "pubkey": pubkey.to_string(), "account": encode(bank, pubkey, account, config) })
}

pub fn signature_value(record: &TxRecord) -> Value {
    let result = RpcSignatureResult::ProcessedSignature(ProcessedSignatureResult {
        err: record.meta.status.clone().err(),
    });
    serde_json::to_value(result).unwrap_or(Value::Null)
}

pub fn received_value() -> Value {
    json!("receivedSignature")
}

fn logs_value(record: &TxRecord) -> Value {
    let logs = RpcLogsResponse {
        signature: record.signature.to_string(),
        err: record.meta.status.clone().err(),
        logs: record.meta.log_messages.clone().unwrap_or_default(),
    };
    serde_json::to_value(logs).unwrap_or(Value::Null)
}

fn logs_match(mentions: &Option<Pubkey>, record: &TxRecord) -> bool {
    mentions.as_ref().is_none_or(|m| record.account_keys.contains(m))
}

/// Collects the messages of one event, then sends them; subscriptions whose connection is
/// gone, and fulfilled signature subscriptions, are removed afterwards.
#[derive(Default)]
struct Outgoing {
    messages: Vec<(SubscriptionId, String)>,
    finished: Vec<SubscriptionId>,
    /// Serialized results by what they show, so many subscribers of one thing cost one encoding.
    encoded: HashMap<String, String>,
}

impl Outgoing {
    fn push(&mut self, id: SubscriptionId, method: &str, result: Value) {
        self.messages.push((id, notification(method, id, &result.to_string())));
    }

    fn push_shared(&mut self, id: SubscriptionId, method: &str, key: String, make: impl FnOnce() -> Value) {
        let result = self.encoded.entry(key).or_insert_with(|| make().to_string());
        let text = notification(method, id, result);
        self.messages.push((id, text));
    }

    fn deliver(self, registry: &mut Registry) {
        let mut dead = HashSet::new();
        for (id, text) in self.messages {
            if let Some(sub) = registry.subscriptions.get(&id) {
                if !sub.outbox.send(text) {
                    dead.insert(sub.outbox.connection);
                }
            }
        }
        for id in self.finished {
            registry.subscriptions.remove(&id);
        }
        for connection in dead {
            registry.drop_connection(connection);
        }
    }
}

impl PubSub {
    pub(super) fn on_event(&self, event: ChainEvent) {
        match event {
            ChainEvent::Processed { bank, record } => self.on_processed(&bank, &record),
            ChainEvent::Frozen { bank, records, next_slot } => self.on_frozen(&bank, &records, next_slot),
        }
    }

    /// A transaction ran in the working bank: `processed` subscriptions hear of it now.
    fn on_processed(&self, bank: &Bank, record: &TxRecord) {
        let mut registry = self.registry();
        let slot = bank.slot();
        let writable: Vec<Pubkey> = record.writable_keys().copied().collect();
        let mut states: HashMap<Pubkey, (AccountSharedData, Slot)> = HashMap::new();
        let mut out = Outgoing::default();
        for (id, sub) in registry.subscriptions.iter_mut() {
            let processed = sub.commitment == CommitmentLevel::Processed;
            let method = sub.kind.notification_method();
            match &mut sub.kind {
                Kind::Signature { signature, received_notification } if *signature == record.signature => {
                    if processed {
                        out.push(*id, method, with_context(slot, signature_value(record)));
                        out.finished.push(*id);
                    } else if *received_notification {
                        *received_notification = false;
                        out.push(*id, method, with_context(slot, received_value()));
                    }
                }
                Kind::Logs { mentions } if processed && logs_match(mentions, record) => {
                    out.push_shared(*id, method, "logs".into(), || with_context(slot, logs_value(record)));
                }
                Kind::Account { pubkey, config, last_slot } if processed && writable.contains(pubkey) => {
                    let (account, _) = states.entry(*pubkey).or_insert_with(|| account_state(bank, pubkey));
                    *last_slot = slot;
                    out.push_shared(*id, method, account_key("a", pubkey, config), || {
                        with_context(slot, encode(bank, pubkey, account, config))
                    });
                }
                Kind::Program { program, config, filters } if processed => {
                    for key in &writable {
                        let (account, _) = states.entry(*key).or_insert_with(|| account_state(bank, key));
                        if program_match(account, program, filters) {
                            out.push_shared(*id, method, account_key("p", key, config), || {
                                with_context(slot, keyed(bank, key, account, config))
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        out.deliver(&mut registry);
    }

    /// A slot was frozen (and rooted): `confirmed` and `finalized` subscriptions hear of its
    /// transactions and account changes; slot and root subscribers hear of the new slots.
    fn on_frozen(&self, bank: &Bank, records: &[std::sync::Arc<TxRecord>], next_slot: Slot) {
        let mut registry = self.registry();
        let slot = bank.slot();
        let mut states: HashMap<Pubkey, (AccountSharedData, Slot)> = HashMap::new();
        let mut modified: HashMap<Pubkey, Vec<(Pubkey, AccountSharedData)>> = HashMap::new();
        let mut out = Outgoing::default();
        for (id, sub) in registry.subscriptions.iter_mut() {
            let processed = sub.commitment == CommitmentLevel::Processed;
            let method = sub.kind.notification_method();
            match &mut sub.kind {
                Kind::Signature { signature, .. } if !processed => {
                    if let Some(record) = records.iter().find(|r| r.signature == *signature) {
                        out.push(*id, method, with_context(slot, signature_value(record)));
                        out.finished.push(*id);
                    }
                }
                Kind::Logs { mentions } if !processed => {
                    for record in records.iter().filter(|r| logs_match(mentions, r)) {
                        let key = format!("logs{}", record.signature);
                        out.push_shared(*id, method, key, || with_context(slot, logs_value(record)));
                    }
                }
                // Every account subscription, `processed` included: this also catches changes
                // made outside transactions (sysvars at the start of a slot).
                Kind::Account { pubkey, config, last_slot } => {
                    let (account, modified_slot) =
                        states.entry(*pubkey).or_insert_with(|| account_state(bank, pubkey));
                    if *modified_slot != *last_slot {
                        *last_slot = *modified_slot;
                        out.push_shared(*id, method, account_key("a", pubkey, config), || {
                            with_context(slot, encode(bank, pubkey, account, config))
                        });
                    }
                }
                Kind::Program { program, config, filters } if !processed => {
                    let changed = modified
                        .entry(*program)
                        .or_insert_with(|| bank.get_program_accounts_modified_since_parent(program));
                    for (key, account) in changed.iter() {
                        if filters.iter().all(|f| filter_allows(f, account)) {
                            out.push_shared(*id, method, account_key("p", key, config), || {
                                with_context(slot, keyed(bank, key, account, config))
                            });
                        }
                    }
                }
                Kind::Slot => {
                    let info = SlotInfo { slot: next_slot, parent: slot, root: slot };
                    out.push_shared(*id, method, "slot".into(), || serde_json::to_value(info).unwrap_or(Value::Null));
                }
                Kind::Root => out.push(*id, method, json!(slot)),
                _ => {}
            }
        }
        out.deliver(&mut registry);
    }
}
