//! WebSocket pubsub: the subscription half of the Solana RPC API (accountSubscribe,
//! programSubscribe, signatureSubscribe, logsSubscribe, slotSubscribe, rootSubscribe and their
//! unsubscribes), served on its own port (by default the RPC port + 1, as the real node).
//!
//! Notifications are driven by the chain: a transaction committed in the working bank feeds
//! `processed` subscriptions at once; a frozen slot feeds `confirmed` and `finalized` ones
//! (on a one-node localnet a frozen slot is also rooted).

mod notify;
mod requests;
mod server;
mod subscriptions;

pub use server::serve;

use {
    crate::chain::Chain,
    std::sync::{Arc, Mutex, MutexGuard},
    subscriptions::Registry,
};

pub struct PubSub {
    chain: Arc<Chain>,
    registry: Mutex<Registry>,
}

impl PubSub {
    /// Creates the service and starts the thread that turns chain events into notifications.
    pub fn start(chain: Arc<Chain>) -> Result<Arc<Self>, String> {
        let events = chain
            .events()
            .ok_or_else(|| "chain events already taken".to_string())?;
        let pubsub = Arc::new(Self {
            chain,
            registry: Mutex::new(Registry::default()),
        });
        let notifier = pubsub.clone();
        std::thread::Builder::new()
            .name("pubsub-notify".into())
            .spawn(move || {
                for event in events {
                    notifier.on_event(event);
                }
            })
            .map_err(|e| format!("cannot start the notifier thread: {e}"))?;
        Ok(pubsub)
    }

    /// The subscriptions; a panic while holding them must not stop the service.
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
