//! Account reads: getAccountInfo, getMultipleAccounts, getProgramAccounts, getBalance, token
//! balances and token-account queries.

use {
    super::{context_response, params::*, Rpc},
    serde_json::{json, Value},
    solana_account::{AccountSharedData, ReadableAccount},
    solana_account_decoder::{
        encode_ui_account,
        parse_account_data::SplTokenAdditionalDataV2,
        parse_token::{get_token_account_mint, token_amount_to_ui_amount_v3},
        UiAccountEncoding, UiDataSliceConfig,
    },
    solana_accounts_db::accounts_index::ScanConfig,
    solana_pubkey::Pubkey,
    solana_rpc_client_api::{
        config::{RpcAccountInfoConfig, RpcContextConfig, RpcProgramAccountsConfig, RpcTokenAccountsFilter},
        filter::RpcFilterType,
        response::RpcTokenAccountBalance,
    },
    solana_runtime::bank::Bank,
};

const MAX_MULTIPLE_ACCOUNTS: usize = 100;
const MAX_FILTERS: usize = 4;
/// Token account size without extensions; owner at offset 32, mint at 0, amount at 64.
const TOKEN_ACCOUNT_LEN: usize = 165;
const MINT_DECIMALS_OFFSET: usize = 44;
const MINT_LEN: usize = 82;
/// getTokenLargestAccounts answers this many accounts.
const LARGEST_TOKEN_ACCOUNTS: usize = 20;

pub fn filter_allows(filter: &RpcFilterType, account: &AccountSharedData) -> bool {
    match filter {
        RpcFilterType::DataSize(size) => account.data().len() as u64 == *size,
        RpcFilterType::Memcmp(memcmp) => memcmp.bytes_match(account.data()),
        RpcFilterType::TokenAccountState => {
            let data = account.data();
            is_token_program(account.owner())
                && (data.len() == TOKEN_ACCOUNT_LEN || (data.len() > TOKEN_ACCOUNT_LEN && data[TOKEN_ACCOUNT_LEN] == 2))
                && data[108] != 0 // AccountState::Uninitialized
        }
    }
}

/// A mint (Token-2022 marks its account type after the token-account-sized base).
fn is_mint_data(data: &[u8]) -> bool {
    data.len() == MINT_LEN || (data.len() > TOKEN_ACCOUNT_LEN && data[TOKEN_ACCOUNT_LEN] == 1)
}

/// A token account rather than a mint or multisig (Token-2022 marks its account type after
/// the base layout).
fn is_token_account_data(data: &[u8]) -> bool {
    data.len() == TOKEN_ACCOUNT_LEN || (data.len() > TOKEN_ACCOUNT_LEN && data[TOKEN_ACCOUNT_LEN] == 2)
}

fn is_token_program(id: &Pubkey) -> bool {
    *id == spl_token_id() || *id == spl_token_2022_id()
}

fn spl_token_id() -> Pubkey {
    solana_pubkey::pubkey!("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")
}

fn spl_token_2022_id() -> Pubkey {
    solana_pubkey::pubkey!("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb")
}

/// Decimals of the mint of a token account, for jsonParsed and UI amounts.
fn token_additional_data(bank: &Bank, account: &AccountSharedData) -> Option<SplTokenAdditionalDataV2> {
    if !is_token_program(account.owner()) {
        return None;
    }
    let mint = get_token_account_mint(account.data())?;
    let mint_account = bank.get_account(&mint)?;
    let decimals = *mint_account.data().get(MINT_DECIMALS_OFFSET)?;
    Some(SplTokenAdditionalDataV2::with_decimals(decimals))
}

fn check_encoding(encoding: UiAccountEncoding, account: Option<&AccountSharedData>, slice_len: Option<usize>) -> Result<(), jsonrpc_core::Error> {
    if matches!(encoding, UiAccountEncoding::Binary | UiAccountEncoding::Base58) {
        let len = slice_len.or(account.map(|a| a.data().len())).unwrap_or(0);
        if len > 128 {
            return Err(invalid_params(
                "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding.",
            ));
        }
    }
    Ok(())
}

pub fn encode_account(bank: &Bank, pubkey: &Pubkey, account: &AccountSharedData, config: &RpcAccountInfoConfig) -> Result<Value, jsonrpc_core::Error> {
    let encoding = config.encoding.unwrap_or(UiAccountEncoding::Binary);
    check_encoding(encoding, Some(account), config.data_slice.map(|s| s.length))?;
    Ok(ui_account(bank, pubkey, account, encoding, config.data_slice))
}

/// The account as the RPC shows it, without the size limit of base58 (pubsub notifications
/// encode whatever the subscription asked for, as the real node does).
pub fn ui_account(bank: &Bank, pubkey: &Pubkey, account: &AccountSharedData, encoding: UiAccountEncoding, data_slice: Option<UiDataSliceConfig>) -> Value {
    let additional = if encoding == UiAccountEncoding::JsonParsed {
        token_additional_data(bank, account).map(|d| solana_account_decoder::parse_account_data::AccountAdditionalDataV3 {
            spl_token_additional_data: Some(d),
        })
    } else {
        None
    };
    let ui = encode_ui_account(pubkey, account, encoding, additional, data_slice);
    serde_json::to_value(ui).expect("UiAccount serializes")
}

impl Rpc {
    fn account_config_bank(&self, config: &RpcAccountInfoConfig) -> Result<std::sync::Arc<Bank>, jsonrpc_core::Error> {
        self.bank_for(config.commitment, config.min_context_slot)
    }

    pub fn get_account_info(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let pubkey = p.pubkey(0, "pubkey")?;
        let config: RpcAccountInfoConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.account_config_bank(&config)?;
        let value = match self.chain.get_account(&bank, &pubkey) {
            Some(account) => encode_account(&bank, &pubkey, &account, &config)?,
            None => Value::Null,
        };
        Ok(context_response(&bank, value))
    }

    pub fn get_multiple_accounts(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let keys: Vec<String> = p.required(0, "pubkeys")?;
        if keys.len() > MAX_MULTIPLE_ACCOUNTS {
            return Err(invalid_params(format!("Too many inputs provided; max {MAX_MULTIPLE_ACCOUNTS}")));
        }
        let keys = keys.iter().map(|k| parse_pubkey(k)).collect::<Result<Vec<_>, _>>()?;
        let config: RpcAccountInfoConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.account_config_bank(&config)?;
        let mut values = Vec::with_capacity(keys.len());
        for key in &keys {
            values.push(match self.chain.get_account(&bank, key) {
                Some(account) => encode_account(&bank, key, &account, &config)?,
                None => Value::Null,
            });
        }
        Ok(context_response(&bank, Value::Array(values)))
    }

    pub fn get_program_accounts(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let program_id = p.pubkey(0, "program_id")?;
        let config: RpcProgramAccountsConfig = p.optional(1)?.unwrap_or_default();
        let filters = config.filters.clone().unwrap_or_default();
        if filters.len() > MAX_FILTERS {
            return Err(invalid_params(format!("Too many filters provided; max {MAX_FILTERS}")));
        }
        for filter in &filters {
            filter
                .verify()
                .map_err(|e| invalid_params(format!("Invalid param: {e:?}")))?;
        }
        let bank = self.account_config_bank(&config.account_config)?;
        let accounts = self.scan_program(&bank, &program_id, &filters)?;
        let mut list = Vec::with_capacity(accounts.len());
        for (pubkey, account) in &accounts {
            list.push(json!({
                "pubkey": pubkey.to_string(),
                "account": encode_account(&bank, pubkey, account, &config.account_config)?,
            }));
        }
        let value = Value::Array(list);
        Ok(if config.with_context.unwrap_or(false) {
            context_response(&bank, value)
        } else {
            value
        })
    }

    fn scan_program(&self, bank: &Bank, program_id: &Pubkey, filters: &[RpcFilterType]) -> Result<Vec<(Pubkey, AccountSharedData)>, jsonrpc_core::Error> {
        let mut accounts = bank
            .get_filtered_program_accounts(
                program_id,
                |account| filters.iter().all(|f| filter_allows(f, account)),
                &ScanConfig::default(),
            )
            .map_err(|e| internal_error(format!("scan failed: {e}")))?;
        accounts.retain(|(_, a)| a.lamports() > 0);
        Ok(accounts)
    }

    pub fn get_balance(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let pubkey = p.pubkey(0, "pubkey")?;
        let config: RpcContextConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        Ok(context_response(&bank, json!(bank.get_balance(&pubkey))))
    }

    pub fn get_minimum_balance_for_rent_exemption(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let len: usize = p.required(0, "data_len")?;
        let bank = self.chain.frozen_bank();
        Ok(json!(bank.get_minimum_balance_for_rent_exemption(len)))
    }

    fn token_account(&self, bank: &Bank, pubkey: &Pubkey) -> Result<(AccountSharedData, SplTokenAdditionalDataV2), jsonrpc_core::Error> {
        let not_token = || invalid_params("Invalid param: not a Token account");
        let account = self.chain.get_account(bank, pubkey).ok_or_else(|| invalid_params("Invalid param: could not find account"))?;
        if !is_token_program(account.owner()) || account.data().len() < TOKEN_ACCOUNT_LEN {
            return Err(not_token());
        }
        let additional = token_additional_data(bank, &account).ok_or_else(|| invalid_params("Invalid param: could not find mint"))?;
        Ok((account, additional))
    }

    pub fn get_token_account_balance(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let pubkey = p.pubkey(0, "pubkey")?;
        let config: RpcContextConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let (account, additional) = self.token_account(&bank, &pubkey)?;
        let amount = u64::from_le_bytes(account.data()[64..72].try_into().unwrap());
        let ui = token_amount_to_ui_amount_v3(amount, &additional);
        Ok(context_response(&bank, serde_json::to_value(ui).unwrap()))
    }

    pub fn get_token_supply(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let mint = p.pubkey(0, "mint")?;
        let config: RpcContextConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let account = self
            .chain
            .get_account(&bank, &mint)
            .filter(|a| is_token_program(a.owner()) && is_mint_data(a.data()))
            .ok_or_else(|| invalid_params("Invalid param: not a Token mint"))?;
        let supply = u64::from_le_bytes(account.data()[36..44].try_into().unwrap());
        let decimals = account.data()[MINT_DECIMALS_OFFSET];
        let ui = token_amount_to_ui_amount_v3(supply, &SplTokenAdditionalDataV2::with_decimals(decimals));
        Ok(context_response(&bank, serde_json::to_value(ui).unwrap()))
    }

    /// Token accounts whose owner (offset 32) or delegate matches, by mint or token program.
    fn token_accounts_by(&self, p: &Params, key_offset: usize) -> RpcResult {
        p.at_most(3)?;
        let key = p.pubkey(0, "pubkey")?;
        let filter: RpcTokenAccountsFilter = p.required(1, "filter")?;
        let config: RpcAccountInfoConfig = p.optional(2)?.unwrap_or_default();
        let bank = self.account_config_bank(&config)?;
        let (program_id, mint) = match filter {
            RpcTokenAccountsFilter::Mint(mint) => {
                let mint = parse_pubkey(&mint)?;
                let mint_account = self
                    .chain
                    .get_account(&bank, &mint)
                    .ok_or_else(|| invalid_params("Invalid param: could not find mint"))?;
                (*mint_account.owner(), Some(mint))
            }
            RpcTokenAccountsFilter::ProgramId(id) => (parse_pubkey(&id)?, None),
        };
        if !is_token_program(&program_id) {
            return Err(invalid_params("Invalid param: unrecognized Token program id"));
        }
        let accounts = self.scan_program(&bank, &program_id, &[])?;
        let mut list = Vec::new();
        for (pubkey, account) in &accounts {
            let data = account.data();
            if !is_token_account_data(data) {
                continue; // a mint or multisig, not a token account
            }
            if key_offset == 32 && data[32..64] != key.to_bytes() {
                continue;
            }
            if key_offset == 72 && (data[72..76] != [1, 0, 0, 0] || data[76..108] != key.to_bytes()) {
                continue; // delegate is COption<Pubkey> at offset 72
            }
            if let Some(mint) = mint {
                if data[0..32] != mint.to_bytes() {
                    continue;
                }
            }
            list.push(json!({
                "pubkey": pubkey.to_string(),
                "account": encode_account(&bank, pubkey, account, &config)?,
            }));
        }
        Ok(context_response(&bank, Value::Array(list)))
    }

    pub fn get_token_largest_accounts(&self, p: &Params) -> RpcResult {
        p.at_most(2)?;
        let mint = p.pubkey(0, "mint")?;
        let config: RpcContextConfig = p.optional(1)?.unwrap_or_default();
        let bank = self.bank_for(config.commitment, config.min_context_slot)?;
        let mint_account = self
            .chain
            .get_account(&bank, &mint)
            .ok_or_else(|| invalid_params("Invalid param: could not find account"))?;
        if !is_token_program(mint_account.owner()) || !is_mint_data(mint_account.data()) {
            return Err(invalid_params("Invalid param: not a Token mint"));
        }
        let decimals = SplTokenAdditionalDataV2::with_decimals(mint_account.data()[MINT_DECIMALS_OFFSET]);
        let mut balances: Vec<(Pubkey, u64)> = self
            .scan_program(&bank, mint_account.owner(), &[])?
            .into_iter()
            .filter(|(_, a)| is_token_account_data(a.data()) && a.data()[0..32] == mint.to_bytes())
            .map(|(key, a)| (key, u64::from_le_bytes(a.data()[64..72].try_into().unwrap())))
            .collect();
        balances.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        balances.truncate(LARGEST_TOKEN_ACCOUNTS);
        let list: Vec<RpcTokenAccountBalance> = balances
            .into_iter()
            .map(|(address, amount)| RpcTokenAccountBalance {
                address: address.to_string(),
                amount: token_amount_to_ui_amount_v3(amount, &decimals),
            })
            .collect();
        Ok(context_response(&bank, serde_json::to_value(list).map_err(|e| internal_error(e.to_string()))?))
    }

    pub fn get_token_accounts_by_owner(&self, p: &Params) -> RpcResult {
        self.token_accounts_by(p, 32)
    }

    pub fn get_token_accounts_by_delegate(&self, p: &Params) -> RpcResult {
        self.token_accounts_by(p, 72)
    }
}
