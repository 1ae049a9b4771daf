//! The live subscriptions and the outgoing queue of each connection.

use {
    solana_clock::Slot,
    solana_commitment_config::CommitmentLevel,
    solana_pubkey::Pubkey,
    solana_rpc_client_api::{config::RpcAccountInfoConfig, filter::RpcFilterType},
    solana_signature::Signature,
    std::{collections::BTreeMap, sync::Arc},
    tokio::sync::{mpsc, Notify},
};

pub type SubscriptionId = u64;

/// Most subscriptions the node holds at once, over all connections.
pub const MAX_SUBSCRIPTIONS: usize = 1_000_000;

/// The sending side of one connection. Messages queue here and a task writes them out; a
/// client that stops reading until the queue is full is disconnected, so it cannot hold up
/// anybody else.
pub struct Outbox {
    pub connection: u64,
    sender: mpsc::Sender<String>,
    kill: Arc<Notify>,
}

impl Outbox {
    pub fn new(connection: u64, sender: mpsc::Sender<String>, kill: Arc<Notify>) -> Self {
        Self { connection, sender, kill }
    }

    /// Queues a message; false if the connection is gone (or was just cut for lagging).
    pub fn send(&self, text: String) -> bool {
        match self.sender.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

pub enum Kind {
    Account {
        pubkey: Pubkey,
        config: RpcAccountInfoConfig,
        /// Slot of the account state last notified (or current when subscribing).
        last_slot: Slot,
    },
    Program {
        program: Pubkey,
        config: RpcAccountInfoConfig,
        filters: Vec<RpcFilterType>,
    },
    Signature {
        signature: Signature,
        received_notification: bool,
    },
    Logs {
        mentions: Option<Pubkey>,
    },
    Slot,
    Root,
}

impl Kind {
    /// The `method` of this kind's notifications.
    pub fn notification_method(&self) -> &'static str {
        match self {
            Kind::Account { .. } => "accountNotification",
            Kind::Program { .. } => "programNotification",
            Kind::Signature { .. } => "signatureNotification",
            Kind::Logs { .. } => "logsNotification",
            Kind::Slot => "slotNotification",
            Kind::Root => "rootNotification",
        }
    }

    /// The unsubscribe method that ends this kind of subscription.
    pub fn unsubscribe_method(&self) -> &'static str {
        match self {
            Kind::Account { .. } => "accountUnsubscribe",
            Kind::Program { .. } => "programUnsubscribe",
            Kind::Signature { .. } => "signatureUnsubscribe",
            Kind::Logs { .. } => "logsUnsubscribe",
            Kind::Slot => "slotUnsubscribe",
            Kind::Root => "rootUnsubscribe",
        }
    }
}

pub struct Subscription {
    pub outbox: Arc<Outbox>,
    pub commitment: CommitmentLevel,
    pub kind: Kind,
}

#[derive(Default)]
pub struct Registry {
    next_id: SubscriptionId,
    pub subscriptions: BTreeMap<SubscriptionId, Subscription>,
}

impl Registry {
    pub fn add(&mut self, subscription: Subscription) -> Option<SubscriptionId> {
        if self.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.subscriptions.insert(id, subscription);
        Some(id)
    }

    /// Ends a subscription of `connection` through the matching unsubscribe method.
    pub fn remove(&mut self, id: SubscriptionId, connection: u64, method: &str) -> bool {
        let owned = self.subscriptions.get(&id).is_some_and(|s| {
            s.outbox.connection == connection && s.kind.unsubscribe_method() == method
        });
        if owned {
            self.subscriptions.remove(&id);
        }
        owned
    }

    pub fn drop_connection(&mut self, connection: u64) {
        self.subscriptions.retain(|_, s| s.outbox.connection != connection);
    }
}

/// `{"jsonrpc":"2.0","method":...,"params":{"result":...,"subscription":id}}`, around a result
/// that is already JSON (one encoding serves every subscriber of the same thing).
pub fn notification(method: &str, id: SubscriptionId, result: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"{method}","params":{{"result":{result},"subscription":{id}}}}}"#)
}

/// The `{"context":{"slot":N},"value":...}` wrapper of pubsub notifications.
pub fn with_context(slot: Slot, value: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "context": { "slot": slot }, "value": value })
}
