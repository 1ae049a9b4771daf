//! Time control for tests: methods of this localnet only (no program instruction is involved).

use {
    super::{params::*, Rpc},
    serde_json::json,
};

/// Largest single clock move accepted (100 years), to keep timestamps far from overflow.
const MAX_CLOCK_STEP: i64 = 100 * 365 * 24 * 3600;
/// Largest single warp, to keep one request bounded.
const MAX_WARP_SLOTS: u64 = 10_000_000;

fn clock_value(slot: u64, unix_timestamp: i64) -> serde_json::Value {
    json!({ "slot": slot, "unixTimestamp": unix_timestamp })
}

impl Rpc {
    pub fn advance_clock(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let seconds: i64 = p.required(0, "seconds")?;
        if !(0..=MAX_CLOCK_STEP).contains(&seconds) {
            return Err(invalid_params(format!("seconds must be between 0 and {MAX_CLOCK_STEP}")));
        }
        let (slot, ts) = self.chain.advance_clock(seconds).map_err(invalid_params)?;
        Ok(clock_value(slot, ts))
    }

    pub fn set_clock(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let timestamp: i64 = p.required(0, "unixTimestamp")?;
        let current = self.chain.working_bank().clock().unix_timestamp;
        if timestamp.saturating_sub(current) > MAX_CLOCK_STEP {
            return Err(invalid_params(format!("the clock may move at most {MAX_CLOCK_STEP} seconds at once")));
        }
        let (slot, ts) = self.chain.set_clock(timestamp).map_err(invalid_params)?;
        Ok(clock_value(slot, ts))
    }

    pub fn warp_slots(&self, p: &Params) -> RpcResult {
        p.at_most(1)?;
        let slots: u64 = p.required(0, "slots")?;
        if slots > MAX_WARP_SLOTS {
            return Err(invalid_params(format!("slots must be at most {MAX_WARP_SLOTS}")));
        }
        let (slot, ts) = self.chain.warp_slots(slots);
        Ok(clock_value(slot, ts))
    }
}
