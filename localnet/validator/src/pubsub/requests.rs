//! Subscribe and unsubscribe requests (JSON-RPC 2.0, single or batch).

use {
    super::{
        notify::{account_state, received_value, signature_value},
        subscriptions::{notification, with_context, Kind, Outbox, Registry, Subscription},
        PubSub,
    },
    crate::rpc::params::{invalid_params, internal_error, parse_signature, Params},
    jsonrpc_core::Error,
    serde_json::{json, Value},
    solana_account_decoder::UiAccountEncoding,
    solana_commitment_config::{CommitmentConfig, CommitmentLevel},
    solana_rpc_client_api::config::{
        RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSignatureSubscribeConfig,
        RpcTransactionLogsConfig, RpcTransactionLogsFilter,
    },
    std::sync::Arc,
};

/// Filters a programSubscribe may carry, as getProgramAccounts.
const MAX_FILTERS: usize = 4;

fn commitment_of(config: Option<CommitmentConfig>) -> CommitmentLevel {
    config.map(|c| c.commitment).unwrap_or(CommitmentLevel::Finalized)
}

fn error_message(id: Value, error: Error) -> Value {
    json!({ "jsonrpc": "2.0", "error": error, "id": id })
}

impl PubSub {
    /// Handles one text message from a client; answers and notifications go to `outbox`.
    pub(super) fn handle_message(&self, outbox: &Arc<Outbox>, text: &str) {
        let parsed: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                outbox.send(error_message(Value::Null, Error::parse_error()).to_string());
                return;
            }
        };
        // The answer is queued while the registry is locked, so no notification of a new
        // subscription can overtake the answer that announces its id.
        let mut registry = self.registry();
        let mut after = Vec::new();
        let answer = match parsed {
            Value::Array(calls) if calls.is_empty() => Some(error_message(Value::Null, Error::invalid_request())),
            Value::Array(calls) => {
                let answers: Vec<Value> = calls
                    .into_iter()
                    .filter_map(|call| self.handle_call(&mut registry, outbox, call, &mut after))
                    .collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            call => self.handle_call(&mut registry, outbox, call, &mut after),
        };
        if let Some(answer) = answer {
            outbox.send(answer.to_string());
        }
        // Signature subscriptions for transactions that are already there.
        for id in after {
            self.check_signature_now(&mut registry, id);
        }
    }

    fn handle_call(&self, registry: &mut Registry, outbox: &Arc<Outbox>, call: Value, after: &mut Vec<u64>) -> Option<Value> {
        let Value::Object(mut obj) = call else {
            return Some(error_message(Value::Null, Error::invalid_request()));
        };
        let id = obj.remove("id");
        let version_ok = obj.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        let (true, Some(method)) = (version_ok, method) else {
            return Some(error_message(id.unwrap_or(Value::Null), Error::invalid_request()));
        };
        let outcome = Params::parse(obj.remove("params"))
            .and_then(|p| self.dispatch(registry, outbox, &method, &p, after));
        let id = id?;
        Some(match outcome {
            Ok(result) => json!({ "jsonrpc": "2.0", "result": result, "id": id }),
            Err(error) => error_message(id, error),
        })
    }

    fn dispatch(&self, registry: &mut Registry, outbox: &Arc<Outbox>, method: &str, p: &Params, after: &mut Vec<u64>) -> Result<Value, Error> {
        let (commitment, kind) = match method {
            "accountSubscribe" => {
                p.at_most(2)?;
                let pubkey = p.pubkey(0, "pubkey")?;
                let config: RpcAccountInfoConfig = p.optional(1)?.unwrap_or_default();
                let commitment = commitment_of(config.commitment);
                let (_, last_slot) = account_state(&self.chain.bank(commitment), &pubkey);
                (commitment, Kind::Account { pubkey, config: with_default_encoding(config), last_slot })
            }
            "programSubscribe" => {
                p.at_most(2)?;
                let program = p.pubkey(0, "pubkey")?;
                let config: RpcProgramAccountsConfig = p.optional(1)?.unwrap_or_default();
                let filters = config.filters.unwrap_or_default();
                if filters.len() > MAX_FILTERS {
                    return Err(invalid_params(format!("Too many filters provided; max {MAX_FILTERS}")));
                }
                for filter in &filters {
                    filter.verify().map_err(|e| invalid_params(format!("Invalid param: {e:?}")))?;
                }
                let account_config = with_default_encoding(config.account_config);
                (commitment_of(account_config.commitment), Kind::Program { program, config: account_config, filters })
            }
            "signatureSubscribe" => {
                p.at_most(2)?;
                let signature = parse_signature(&p.required::<String>(0, "signature")?)?;
                let config: RpcSignatureSubscribeConfig = p.optional(1)?.unwrap_or_default();
                let kind = Kind::Signature {
                    signature,
                    received_notification: config.enable_received_notification.unwrap_or(false),
                };
                (commitment_of(config.commitment), kind)
            }
            "logsSubscribe" => {
                p.at_most(2)?;
                let filter: RpcTransactionLogsFilter = p.required(0, "filter")?;
                let mentions = match filter {
                    RpcTransactionLogsFilter::All | RpcTransactionLogsFilter::AllWithVotes => None,
                    RpcTransactionLogsFilter::Mentions(list) => match list.as_slice() {
                        [one] => Some(crate::rpc::params::parse_pubkey(one)?),
                        _ => return Err(invalid_params("Invalid Request: Only 1 address supported")),
                    },
                };
                let config: Option<RpcTransactionLogsConfig> = p.optional(1)?;
                (commitment_of(config.and_then(|c| c.commitment)), Kind::Logs { mentions })
            }
            "slotSubscribe" => {
                p.at_most(0)?;
                (CommitmentLevel::Processed, Kind::Slot)
            }
            "rootSubscribe" => {
                p.at_most(0)?;
                (CommitmentLevel::Finalized, Kind::Root)
            }
            "accountUnsubscribe" | "programUnsubscribe" | "signatureUnsubscribe" | "logsUnsubscribe"
            | "slotUnsubscribe" | "rootUnsubscribe" => {
                p.at_most(1)?;
                let id: u64 = p.required(0, "subscription id")?;
                return if registry.remove(id, outbox.connection, method) {
                    Ok(json!(true))
                } else {
                    Err(invalid_params("Invalid subscription id."))
                };
            }
            _ => return Err(Error::method_not_found()),
        };
        let is_signature = matches!(kind, Kind::Signature { .. });
        let subscription = Subscription { outbox: outbox.clone(), commitment, kind };
        let id = registry
            .add(subscription)
            .ok_or_else(|| internal_error("Internal error: too many subscriptions"))?;
        if is_signature {
            after.push(id);
        }
        Ok(json!(id))
    }

    /// A signature subscription for a transaction that already reached (or passed) the
    /// commitment is answered at once, as the real node does on its next check.
    fn check_signature_now(&self, registry: &mut Registry, id: u64) {
        let Some(sub) = registry.subscriptions.get_mut(&id) else { return };
        let Kind::Signature { signature, received_notification } = &mut sub.kind else { return };
        let Some(record) = self.chain.transaction(signature) else { return };
        let reached = match sub.commitment {
            CommitmentLevel::Processed => true,
            _ => record.slot <= self.chain.frozen_bank().slot(),
        };
        if reached {
            let text = notification("signatureNotification", id, &with_context(record.slot, signature_value(&record)).to_string());
            sub.outbox.send(text);
            registry.subscriptions.remove(&id);
        } else if *received_notification {
            *received_notification = false;
            let text = notification("signatureNotification", id, &with_context(record.slot, received_value()).to_string());
            sub.outbox.send(text);
        }
    }
}

/// Pubsub account data defaults to base58 (`binary`), as the real node.
fn with_default_encoding(mut config: RpcAccountInfoConfig) -> RpcAccountInfoConfig {
    config.encoding.get_or_insert(UiAccountEncoding::Binary);
    config
}
