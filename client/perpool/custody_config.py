"""Custody configuration (the ``CustodyConfig`` argument of add_custody / set_custody_config).

Leverage in bps of 1x (10_000 = 1x), fees in bps, USD amounts with 6 decimals, borrow and
funding rates hourly with 9 decimals, the payoff scale k with 9 decimals.

Liquidation steps are ``(margin_fraction_bps, close_bps)`` pairs in order of falling margin:
``((10_000, 5_000), (5_000, 10_000))`` closes half the position below the maintenance margin
and the rest below half of it. The default is the one-step auto-close.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solders.pubkey import Pubkey

BPS = 10_000
RATE_ONE = 1_000_000_000
MAX_LIQUIDATION_STEPS = 4
ONE_STEP: tuple[tuple[int, int], ...] = ((BPS, BPS),)
PAYOFF_KINDS = ("spot", "linear", "square", "sqrt")


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
    min_trade_size_usd: int = 0,
    min_liquidity_deposit_usd: int = 0,
    open_position_bps: int = 0,
    close_position_bps: int = 0,
    min_fee_usd: int = 0,
    swap_bps: int = 0,
    liquidity_min_fee_bps: int = 0,
    liquidity_max_fee_bps: int = 0,
    liquidity_fee_k_bps: int = 0,
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
    liquidation_steps: Sequence[tuple[int, int]] = ONE_STEP,
    auto_close_fee_usd: int = 0,
    insurance_fund_fraction_bps: int = 0,
    insurance_fund_cap_usd: int = 0,
    funding_c: int = 0,
    max_funding_rate: int = 0,
    long_a_bps: int = 0,
    long_b_bps: int = 0,
    short_a_bps: int = 0,
    short_b_bps: int = 0,
    payoff: str = "spot",
    payoff_scale: int = 0,
    max_profit_bps: int = 0,
) -> dict[str, Any]:
    """A config dict for anchorpy; ``client_types`` is ``program.type`` (for the enums)."""
    oracle_type = client_types["OracleType"].Pyth() if pyth else client_types["OracleType"].Custom()
    if payoff not in PAYOFF_KINDS:
        raise ValueError(f"payoff must be one of {', '.join(PAYOFF_KINDS)}, not {payoff!r}")
    if not 1 <= len(liquidation_steps) <= MAX_LIQUIDATION_STEPS:
        raise ValueError(f"between 1 and {MAX_LIQUIDATION_STEPS} liquidation steps")
    steps = [{"margin_fraction_bps": m, "close_bps": c} for m, c in liquidation_steps]
    steps += [{"margin_fraction_bps": 0, "close_bps": 0}] * (MAX_LIQUIDATION_STEPS - len(steps))
    payoff_kind = getattr(client_types["PayoffKind"], payoff.capitalize())()
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
            "min_trade_size_usd": min_trade_size_usd,
            "min_liquidity_deposit_usd": min_liquidity_deposit_usd,
        },
        "fees": {
            "open_position_bps": open_position_bps,
            "close_position_bps": close_position_bps,
            "min_fee_usd": min_fee_usd,
            "swap_bps": swap_bps,
            "liquidity_min_fee_bps": liquidity_min_fee_bps,
            "liquidity_max_fee_bps": liquidity_max_fee_bps,
            "liquidity_fee_k_bps": liquidity_fee_k_bps,
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
        "liquidation": {
            "steps": steps,
            "num_steps": len(liquidation_steps),
            "auto_close_fee_usd": auto_close_fee_usd,
            "insurance_fund_fraction_bps": insurance_fund_fraction_bps,
            "insurance_fund_cap_usd": insurance_fund_cap_usd,
        },
        "funding": {"funding_c": funding_c, "max_hourly_rate": max_funding_rate},
        "slippage": {
            "long_a_bps": long_a_bps,
            "long_b_bps": long_b_bps,
            "short_a_bps": short_a_bps,
            "short_b_bps": short_b_bps,
        },
        "payoff": {"kind": payoff_kind, "scale": payoff_scale, "max_profit_bps": max_profit_bps},
    }
