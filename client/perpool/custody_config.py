"""Custody configuration (the ``CustodyConfig`` argument of add_custody / set_custody_config).

Leverage in bps of 1x (10_000 = 1x), fees in bps, borrow rates hourly with 9 decimals.
"""

from __future__ import annotations

from typing import Any

from solders.pubkey import Pubkey

BPS = 10_000
RATE_ONE = 1_000_000_000


def custody_config(
    oracle_account: Pubkey,
    *,
    client_types: Any,
    max_price_error_bps: int = 100,
    max_price_age_sec: int = 60,
    min_initial_leverage: int = BPS,
    max_initial_leverage: int = 100 * BPS,
    max_leverage: int = 250 * BPS,
    max_utilization_bps: int = BPS,
    max_position_size_usd: int = 0,
    max_long_open_interest_usd: int = 0,
    max_short_open_interest_usd: int = 0,
    open_position_bps: int = 0,
    close_position_bps: int = 0,
    swap_bps: int = 0,
    add_liquidity_bps: int = 0,
    remove_liquidity_bps: int = 0,
    liquidation_reward_bps: int = 0,
    protocol_share_bps: int = 0,
    hourly_rate: int = 0,
    base_rate: int = 0,
    slope2: int = 0,
    optimal_utilization: int = RATE_ONE,
    target_bps: int = 2_000,
    min_bps: int = 0,
    max_bps: int = BPS,
    feed_id: bytes = bytes(32),
    pyth: bool = False,
) -> dict[str, Any]:
    """A config dict for anchorpy; ``client_types`` is ``program.type`` (for the oracle enum)."""
    oracle_type = client_types["OracleType"].Pyth() if pyth else client_types["OracleType"].Custom()
    return {
        "oracle": {
            "oracle_type": oracle_type,
            "oracle_account": oracle_account,
            "feed_id": list(feed_id),
            "max_price_error_bps": max_price_error_bps,
            "max_price_age_sec": max_price_age_sec,
        },
        "pricing": {
            "min_initial_leverage": min_initial_leverage,
            "max_initial_leverage": max_initial_leverage,
            "max_leverage": max_leverage,
            "max_utilization_bps": max_utilization_bps,
            "max_position_size_usd": max_position_size_usd,
            "max_long_open_interest_usd": max_long_open_interest_usd,
            "max_short_open_interest_usd": max_short_open_interest_usd,
        },
        "fees": {
            "open_position_bps": open_position_bps,
            "close_position_bps": close_position_bps,
            "swap_bps": swap_bps,
            "add_liquidity_bps": add_liquidity_bps,
            "remove_liquidity_bps": remove_liquidity_bps,
            "liquidation_reward_bps": liquidation_reward_bps,
            "protocol_share_bps": protocol_share_bps,
        },
        "borrow_rate": {
            "base_rate": base_rate,
            "slope1": hourly_rate,
            "slope2": slope2,
            "optimal_utilization": optimal_utilization,
        },
        "ratios": {"target_bps": target_bps, "min_bps": min_bps, "max_bps": max_bps},
    }
