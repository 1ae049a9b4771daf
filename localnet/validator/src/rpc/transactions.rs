//! Transactions: send (with preflight), simulate, statuses, history, airdrop, fees.

use {
    super::{accounts::encode_account, context_response, params::*, Rpc},
    base64::{prelude::BASE64_STANDARD, Engine},
    bincode::Options,
    jsonrpc_core::Error,
    serde_json::{json, Value},
    solana_account_decoder::UiAccountEncoding,
    solana_clock::Slot,
    solana_message::{SanitizedMessage, SanitizedVersionedMessage, VersionedMessage},
    solana_rpc_client_api::{
        config::{
            RpcAccountInfoConfig, RpcContextConfig, RpcEncodingConfigWrapper,
            RpcRequestAirdropConfig, RpcSendTransactionConfig, RpcSimulateTransactionConfig,
            RpcTransactionConfig,
        },
        custom_error::RpcCustomError,
        response::{RpcBlockhash, RpcSimulateTransactionResult},
    },
    solana_runtime::bank::TransactionSimulationResult,
    solana_transaction::versioned::VersionedTransaction,
    solana_transaction_error::TransactionError,
    solana_transaction_status::{
        map_inner_instructions, parse_ui_inner_instructions, ConfirmedTransactionWithStatusMeta,
        EncodeError, TransactionConfirmationStatus, TransactionStatus, TransactionWithStatusMeta,
        UiTransactionEncoding, UiTransactionReturnData, VersionedTransactionWithStatusMeta,
    },
};

/// Largest serialized transaction (PACKET_DATA_SIZE) and its encoded sizes.
const PACKET_DATA_SIZE: usize = 1232;
const MAX_BASE58_SIZE: usize = 1683;
const MAX_BASE64_SIZE: usize = 1644;
const MAX_SIGNATURE_STATUSES: usize = 256;
const COMPUTE_BUDGET_PROGRAM: solana_pubkey::Pubkey =
    solana_pubkey::pubkey!("ComputeBudget111111111111111111111111111111");

fn decode_transaction(encoded: &str, encoding: Option<UiTransactionEncoding>) -> Result<VersionedTransaction, Error> {
    let encoding = encoding.unwrap_or(UiTransactionEncoding::Base58);
    let type_name = "solana_transaction::versioned::VersionedTransaction";
    let bytes = match encoding {
        UiTransactionEncoding::Base58 => {
            if encoded.len() > MAX_BASE58_SIZE {
                return Err(invalid_params(format!(
                    "base58 encoded {type_name} too large: {} bytes (max: encoded/raw {MAX_BASE58_SIZE}/{PACKET_DATA_SIZE})",
                    encoded.len()
                )));
            }
            bs58::decode(encoded).into_vec().map_err(|e| invalid_params(format!("invalid base58 encoding: {e:?}")))?
        }
        UiTransactionEncoding::Base64 => {
            if encoded.len() > MAX_BASE64_SIZE {
                return Err(invalid_params(format!(
                    "base64 encoded {type_name} too large: {} bytes (max: encoded/raw {MAX_BASE64_SIZE}/{PACKET_DATA_SIZE})",
                    encoded.len()
                )));
            }
            BASE64_STANDARD.decode(encoded).map_err(|e| invalid_params(format!("invalid base64 encoding: {e:?}")))?
        }
        other => {
            return Err(invalid_params(format!("unsupported encoding: {other}. Supported encodings: base58, base64")))
        }
    };
    if bytes.len() > PACKET_DATA_SIZE {
        return Err(invalid_params(format!(
            "decoded {type_name} too large: {} bytes (max: {PACKET_DATA_SIZE} bytes)",
            bytes.len()
        )));
    }
    let tx: VersionedTransaction = bincode::options()
        .with_limit(PACKET_DATA_SIZE as u64)
        .with_fixint_encoding()
        .allow_trailing_bytes()
        .deserialize_from(&bytes[..])
        .map_err(|e| invalid_params(format!("failed to deserialize {type_name}: {e}")))?;
    tx.sanitize().map_err(|e| invalid_params(format!("invalid transaction: {e}")))?;
    Ok(tx)
}

fn verification_error(err: TransactionError) -> Error {
    match err {
        TransactionError::SignatureFailure => RpcCustomError::TransactionSignatureVerificationFailure.into(),
        other => invalid_params(format!("invalid transaction: {other}")),
    }
}

fn simulation_value(sim: &TransactionSimulationResult) -> RpcSimulateTransactionResult {
    RpcSimulateTransactionResult {
        err: sim.result.clone().err(),
        logs: Some(sim.logs.clone()),
        accounts: None,
        units_consumed: Some(sim.units_consumed),
        loaded_accounts_data_size: Some(sim.loaded_accounts_data_size),
        return_data: sim.return_data.clone().map(UiTransactionReturnData::from),
        inner_instructions: None,
        replacement_blockhash: None,
    }
}

fn preflight_failure(err: &TransactionError, result: RpcSimulateTransactionResult) -> Error {
    RpcCustomError::SendTransactionPreflightFailure {
        message: format!("Transaction simulation failed: {err}"),
        result,
    }
    .into()
}

/// Compute-unit price (micro-lamports) a transaction bids, from its compute-budget instructions.
pub fn compute_unit_price(tx: &VersionedTransaction) -> u64 {
    let keys = tx.message.static_account_keys();
    tx.message
        .instructions()
        .iter()
        .filter(|ix| keys.get(ix.program_id_index as usize) == Some(&COMPUTE_BUDGET_PROGRAM))
        .filter(|ix| ix.data.len() == 9 && ix.data[0] == 3)
        .map(|ix| u64::from_le_bytes(ix.data[1..9].try_into().unwrap()))
        .next_back()
        .unwrap_or(0)
}

impl Rpc {
    pub fn send_transaction(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let encoded: String = p.required(0, "transaction")?;
        let config: RpcSendTransactionConfig = p.optional(1)?.unwrap_or_default();
        let tx = decode_transaction(&encoded, config.encoding)?;
        let signature = tx.signatures[0];
        let bank = self.bank_for(config.preflight_commitment.map(|c| solana_commitment_config::CommitmentConfig { commitment: c }), config.min_context_slot)?;
        // As Agave's RPC: signatures are verified with the preflight; without it the
        // transaction is accepted and a bad one is dropped when executed.
        let sanitized = crate::chain::Chain::sanitize(&bank, tx.clone(), !config.skip_preflight)
            .map_err(verification_error)?;
        if !config.skip_preflight {
            let sim = self.chain.simulate(&bank, &sanitized);
            if let Err(err) = &sim.result {
                return Err(preflight_failure(err, simulation_value(&sim)));
            }
        }
        match self.chain.process(tx) {
            Ok(_) => Ok(json!(signature.to_string())),
            // Without preflight a real validator accepts the bytes and drops them later.
            Err(_) if config.skip_preflight => Ok(json!(signature.to_string())),
            Err(err) => Err(preflight_failure(&err, RpcSimulateTransactionResult {
                err: Some(err.clone()),
                logs: Some(Vec::new()),
                accounts: None,
                units_consumed: Some(0),
                loaded_accounts_data_size: None,
                return_data: None,
                inner_instructions: None,
                replacement_blockhash: None,
            })),
        }
    }

    pub fn simulate_transaction(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let encoded: String = p.required(0, "transaction")?;
        let config: RpcSimulateTransactionConfig = p.optional(1)?.unwrap_or_default();
        if config.sig_verify && config.replace_recent_blockhash {
            return Err(invalid_params("sigVerify may not be used with replaceRecentBlockhash"));
        }
        let mut tx = decode_transaction(&encoded, config.encoding)?;
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let mut replacement = None;
        if config.replace_recent_blockhash {
            let blockhash = bank.last_blockhash();
            tx.message.set_recent_blockhash(blockhash);
            replacement = Some(RpcBlockhash {
                blockhash: blockhash.to_string(),
                last_valid_block_height: bank.get_blockhash_last_valid_block_height(&blockhash).unwrap_or_default(),
            });
        }
        let sanitized = crate::chain::Chain::sanitize(&bank, tx, config.sig_verify).map_err(verification_error)?;
        let sim = self.chain.simulate(&bank, &sanitized);
        let mut value = simulation_value(&sim);
        value.replacement_blockhash = replacement;
        if let Some(accounts_config) = &config.accounts {
            let encoding = accounts_config.encoding.unwrap_or(UiAccountEncoding::Base64);
            if matches!(encoding, UiAccountEncoding::Binary | UiAccountEncoding::Base58) {
                return Err(invalid_params("base58 encoding not supported"));
            }
            let account_config = RpcAccountInfoConfig { encoding: Some(encoding), ..Default::default() };
            let mut accounts = Vec::new();
            for address in &accounts_config.addresses {
                let key = parse_pubkey(address)?;
                let found = sim.post_simulation_accounts.iter().find(|(k, _)| *k == key);
                accounts.push(match found {
                    Some((k, account)) => Some(serde_json::from_value(encode_account(&bank, k, account, &account_config)?).unwrap()),
                    None => None,
                });
            }
            value.accounts = Some(accounts);
        }
        if config.inner_instructions {
            let keys = sanitized.message().account_keys();
            value.inner_instructions = sim.inner_instructions.clone().map(|list| {
                map_inner_instructions(list)
                    .map(|ixs| parse_ui_inner_instructions(ixs, &keys))
                    .collect()
            });
        }
        Ok(context_response(&bank, serde_json::to_value(value).unwrap()))
    }

    pub fn get_signature_statuses(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let signatures: Vec<String> = p.required(0, "signatures")?;
        if signatures.len() > MAX_SIGNATURE_STATUSES {
            return Err(invalid_params(format!("Too many inputs provided; max {MAX_SIGNATURE_STATUSES}")));
        }
        let frozen = self.chain.frozen_bank();
        let working = self.chain.working_bank();
        let mut statuses = Vec::with_capacity(signatures.len());
        for text in &signatures {
            let signature = parse_signature(text)?;
            let status = self.chain.transaction(&signature).map(|record| {
                let final_ = record.slot <= frozen.slot();
                TransactionStatus {
                    slot: record.slot,
                    confirmations: if final_ { None } else { Some(0) },
                    status: record.meta.status.clone(),
                    err: record.meta.status.clone().err(),
                    confirmation_status: Some(if final_ {
                        TransactionConfirmationStatus::Finalized
                    } else {
                        TransactionConfirmationStatus::Processed
                    }),
                }
            });
            statuses.push(serde_json::to_value(status).unwrap());
        }
        Ok(context_response(&working, Value::Array(statuses)))
    }

    pub fn get_transaction(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let signature = parse_signature(&p.required::<String>(0, "signature")?)?;
        let config = p
            .optional::<RpcEncodingConfigWrapper<RpcTransactionConfig>>(1)?
            .map(|w| w.convert_to_current())
            .unwrap_or_default();
        if let Some(c) = config.commitment {
            if c.commitment == solana_commitment_config::CommitmentLevel::Processed {
                return Err(invalid_params("Method does not support commitment below `confirmed`"));
            }
        }
        let frozen_slot = self.chain.frozen_bank().slot();
        let Some(record) = self.chain.transaction(&signature).filter(|r| r.slot <= frozen_slot) else {
            return Ok(Value::Null);
        };
        let confirmed = ConfirmedTransactionWithStatusMeta {
            slot: record.slot,
            tx_with_meta: TransactionWithStatusMeta::Complete(VersionedTransactionWithStatusMeta {
                transaction: record.transaction.clone(),
                meta: record.meta.clone(),
            }),
            block_time: self.chain.block_time(record.slot),
        };
        let encoding = config.encoding.unwrap_or(UiTransactionEncoding::Json);
        match confirmed.encode(encoding, config.max_supported_transaction_version) {
            Ok(encoded) => Ok(serde_json::to_value(encoded).unwrap()),
            Err(EncodeError::UnsupportedTransactionVersion(v)) => Err(RpcCustomError::UnsupportedTransactionVersion(v).into()),
        }
    }

    pub fn request_airdrop(&self, p: &Params) -> RpcResult {
        p.at_most(3)?;
        let to = p.pubkey(0, "pubkey")?;
        let lamports: u64 = p.required(1, "lamports")?;
        let _config: Option<RpcRequestAirdropConfig> = p.optional(2)?;
        if lamports == 0 {
            return Err(invalid_params("Invalid param: lamports must be greater than zero"));
        }
        self.chain
            .airdrop(&to, lamports)
            .map(|sig| json!(sig.to_string()))
            .map_err(|e| internal_error(format!("airdrop request failed: {e}")))
    }

    pub fn get_fee_for_message(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let encoded: String = p.required(0, "message")?;
        let config: RpcContextConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let bytes = BASE64_STANDARD.decode(&encoded).map_err(|e| invalid_params(format!("invalid base64 encoding: {e:?}")))?;
        let message: VersionedMessage = bincode::options()
            .with_limit(PACKET_DATA_SIZE as u64)
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .deserialize_from(&bytes[..])
            .map_err(|e| invalid_params(format!("failed to deserialize message: {e}")))?;
        let versioned = SanitizedVersionedMessage::try_from(message).map_err(|e| invalid_params(format!("invalid message: {e}")))?;
        let sanitized = SanitizedMessage::try_new(versioned, &*bank, bank.get_reserved_account_keys())
            .map_err(|e| invalid_params(format!("invalid message: {e}")))?;
        Ok(context_response(&bank, json!(bank.get_fee_for_message(&sanitized))))
    }

    pub fn get_recent_prioritization_fees(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let addresses: Vec<String> = p.optional(0)?.unwrap_or_default();
        if addresses.len() > 128 {
            return Err(invalid_params("Too many inputs provided; max 128"));
        }
        let addresses = addresses.iter().map(|a| parse_pubkey(a)).collect::<Result<Vec<_>, _>>()?;
        let frozen: Slot = self.chain.frozen_bank().slot();
        let slots = self.chain.blocks_in(frozen.saturating_sub(149), frozen);
        let mut fees = Vec::with_capacity(slots.len());
        for slot in slots {
            let Some(block) = self.chain.block(slot) else { continue };
            let records: Vec<_> = block.signatures.iter().filter_map(|s| self.chain.transaction(s)).collect();
            let fee = if addresses.is_empty() {
                records.iter().map(|r| compute_unit_price(&r.transaction)).min().unwrap_or(0)
            } else {
                addresses
                    .iter()
                    .map(|address| {
                        records
                            .iter()
                            .filter(|r| writes_account(&r.transaction, address))
                            .map(|r| compute_unit_price(&r.transaction))
                            .min()
                            .unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0)
            };
            fees.push(json!({"slot": slot, "prioritizationFee": fee}));
        }
        Ok(Value::Array(fees))
    }
}

fn writes_account(tx: &VersionedTransaction, address: &solana_pubkey::Pubkey) -> bool {
    tx.message
        .static_account_keys()
        .iter()
        .enumerate()
        .any(|(i, k)| k == address && tx.message.is_maybe_writable(i, None))
}
