//! Positional JSON-RPC parameters and the error shapes of the Solana RPC.

use {
    jsonrpc_core::{Error, ErrorCode},
    serde::de::DeserializeOwned,
    serde_json::Value,
    solana_pubkey::Pubkey,
    solana_signature::Signature,
    std::str::FromStr,
};

pub type RpcResult = Result<Value, Error>;

pub fn invalid_params(message: impl Into<String>) -> Error {
    Error::invalid_params(message.into())
}

pub fn internal_error(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InternalError,
        message: message.into(),
        data: None,
    }
}

pub struct Params(Vec<Value>);

impl Params {
    pub fn parse(params: Option<Value>) -> Result<Self, Error> {
        match params {
            None | Some(Value::Null) => Ok(Self(Vec::new())),
            Some(Value::Array(values)) => Ok(Self(values)),
            Some(_) => Err(invalid_params("Invalid params: expected an array of positional parameters")),
        }
    }

    pub fn at_most(&self, n: usize) -> Result<&Self, Error> {
        if self.0.len() > n {
            return Err(invalid_params(format!(
                "Invalid parameters: Expected at most {n} parameter(s), got {}",
                self.0.len()
            )));
        }
        Ok(self)
    }

    pub fn required<T: DeserializeOwned>(&self, index: usize, name: &str) -> Result<T, Error> {
        match self.0.get(index) {
            None | Some(Value::Null) => Err(invalid_params(format!("`params` should have at least {} argument(s): missing {name}", index + 1))),
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| invalid_params(format!("Invalid params: {e}."))),
        }
    }

    pub fn optional<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>, Error> {
        match self.0.get(index) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|e| invalid_params(format!("Invalid params: {e}."))),
        }
    }

    pub fn pubkey(&self, index: usize, name: &str) -> Result<Pubkey, Error> {
        parse_pubkey(&self.required::<String>(index, name)?)
    }
}

pub fn parse_pubkey(text: &str) -> Result<Pubkey, Error> {
    Pubkey::from_str(text).map_err(|_| invalid_params(format!("Invalid param: Invalid pubkey {text:?}")))
}

pub fn parse_signature(text: &str) -> Result<Signature, Error> {
    Signature::from_str(text).map_err(|_| invalid_params(format!("Invalid param: Invalid signature {text:?}")))
}
