"""The keeper's failure metric labels (pure; the sender itself is tested against a localnet)."""

from __future__ import annotations

from prometheus_client import generate_latest

from perpool_keeper.metrics import Metrics
from perpool_keeper.sender import error_label


def test_error_label_keeps_names_and_drops_details() -> None:
    assert error_label("NotLiquidatable") == "NotLiquidatable"
    assert error_label("InstructionError((0, Custom(6033)))") == "InstructionError"
    assert error_label("InsufficientFundsForFee") == "InsufficientFundsForFee"
    assert error_label("") == ""
    assert error_label("(0, 1)") == ""


def test_failures_are_counted_per_program_error() -> None:
    metrics = Metrics()
    for error in ("NotLiquidatable", "NotLiquidatable", "AccountNotInitialized"):
        metrics.tx_failed.labels(kind="liquidate", reason="simulation", error=error).inc()
    lines = generate_latest(metrics.registry).decode().splitlines()
    # Prometheus writes the labels sorted by name.
    sample = 'perpool_keeper_tx_failed_total{{error="{}",kind="liquidate",reason="simulation"}} {}'
    assert sample.format("NotLiquidatable", "2.0") in lines
    assert sample.format("AccountNotInitialized", "1.0") in lines
