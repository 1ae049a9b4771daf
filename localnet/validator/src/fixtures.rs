//! Account fixtures in the JSON format of `solana account --output json` (the format
//! `solana-test-validator --account ADDRESS FILE` loads).

use {
    base64::{prelude::BASE64_STANDARD, Engine},
    serde::Deserialize,
    serde_json::Value,
    solana_account::{Account, AccountSharedData},
    solana_pubkey::Pubkey,
    std::{path::Path, str::FromStr},
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixtureAccount {
    lamports: u64,
    data: Value,
    owner: String,
    executable: bool,
    #[serde(default)]
    rent_epoch: u64,
}

#[derive(Deserialize)]
struct Fixture {
    pubkey: String,
    account: FixtureAccount,
}

fn decode_data(data: &Value) -> Result<Vec<u8>, String> {
    match data {
        Value::Array(parts) if parts.len() == 2 => {
            let text = parts[0].as_str().ok_or("data[0] must be a string")?;
            match parts[1].as_str() {
                Some("base64") => BASE64_STANDARD.decode(text).map_err(|e| format!("bad base64 data: {e}")),
                Some("base58") => bs58::decode(text).into_vec().map_err(|e| format!("bad base58 data: {e}")),
                other => Err(format!("unsupported data encoding {other:?} (use base64 or base58)")),
            }
        }
        Value::String(text) => bs58::decode(text).into_vec().map_err(|e| format!("bad base58 data: {e}")),
        _ => Err("data must be [\"<data>\", \"base64\"]".into()),
    }
}

/// Loads one fixture. `address` "-" takes the address from the file.
pub fn load(address: &str, path: &Path) -> Result<(Pubkey, AccountSharedData), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fixture: Fixture = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let key_text = if address == "-" { fixture.pubkey.as_str() } else { address };
    let pubkey = Pubkey::from_str(key_text).map_err(|e| format!("{}: bad address {key_text:?}: {e}", path.display()))?;
    let owner = Pubkey::from_str(&fixture.account.owner).map_err(|e| format!("{}: bad owner: {e}", path.display()))?;
    let data = decode_data(&fixture.account.data).map_err(|e| format!("{}: {e}", path.display()))?;
    let account = Account {
        lamports: fixture.account.lamports,
        data,
        owner,
        executable: fixture.account.executable,
        rent_epoch: fixture.account.rent_epoch,
    };
    Ok((pubkey, AccountSharedData::from(account)))
}
