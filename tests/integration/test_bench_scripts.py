"""The benchmark scripts end to end with tiny parameters: each starts its own validator (the
binary ``PERPOOL_LOCALNET_BIN`` names, inherited, or the release build) and writes its JSON.
Timings are never asserted; the structure and the accounting are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perpool.program import error_names, load_idl

BENCH = Path(__file__).resolve().parents[2] / "bench"
STAGES = {"quote", "preflight", "on_chain", "rpc", "confirm"}

pytestmark = pytest.mark.fresh_localnet


def run_script(script: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-4000:])
    return result


def test_load_script_reports_throughput_latency_failures_keeper_and_invariants(
    tmp_path: Path,
) -> None:
    out = tmp_path / "load.json"
    run_script(
        "load.py",
        *("--traders", "2", "--lps", "1", "--rate", "5", "--seconds", "12", "--seed", "3"),
        # Short slots keep setup quick; a fifth of the trades carry a price limit the program
        # must refuse, so the failure path is exercised every time.
        *("--slot-ms", "100", "--invalid-share", "0.2", "--json", str(out)),
        timeout=300,
    )
    report: dict[str, Any] = json.loads(out.read_text())

    tp = report["throughput"]
    assert tp["landed"] > 0
    assert tp["attempted"] == sum(a["attempted"] for a in report["actions"].values())
    assert report["client_errors"] == {}

    # Every action that landed has its latency percentiles; all of them together are "overall".
    per_action = report["latency"]["per_action"]
    landed = {name: a for name, a in report["actions"].items() if a["landed"]}
    assert landed
    for name, stats in landed.items():
        lat = per_action[name]
        assert lat["n"] == stats["landed"]
        assert 0 < lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert report["latency"]["overall"]["n"] == tp["landed"]

    # Failures are classified by name and stage, and add up to what the actions counted.
    failures = report["failures"]
    counted = sum(
        a["rejected"] + a["failed_on_chain"] + a["timeouts"] + a["rpc_errors"] + a["quote_failures"]
        for a in report["actions"].values()
    )
    assert sum(f["total"] for f in failures.values()) == counted
    assert "PriceLimitExceeded" in failures, failures
    assert failures["PriceLimitExceeded"]["stages"].get("preflight", 0) > 0
    program_errors = set(error_names(load_idl()).values())
    for reason, f in failures.items():
        assert reason
        assert reason != "unknown"
        assert set(f["stages"]) <= STAGES
        assert sum(f["stages"].values()) == sum(f["actions"].values()) == f["total"]
        if set(f["stages"]) & {"preflight", "on_chain", "quote"} and reason[:1].isupper():
            # A name, not a message: a Perpool error or one of Anchor's own (CamelCase).
            assert reason in program_errors or reason.isidentifier(), reason

    keeper = report["keeper"]
    assert keeper["available"]
    assert keeper["alive_at_end"]
    assert keeper["exit_code"] == 0
    assert keeper["price_feeds"]
    assert keeper["job_ticks"]["liquidation"] > 0
    assert keeper["oracle_posts"] > 0
    assert keeper["liquidations"]["total"] == keeper["liquidations_logged"]

    invariants = report["invariants"]
    assert invariants["ok"], invariants["violations"]
    assert set(invariants["custodies"]) == {"SOL", "ETH", "WBTC", "USDC", "USDT", "ETH2"}


def test_cli_latency_script(tmp_path: Path) -> None:
    out = tmp_path / "cli.json"
    run_script(
        "cli_latency.py",
        *("--runs", "1", "--commands", "version,pool", "--slot-ms", "100", "--json", str(out)),
        timeout=180,
    )
    report = json.loads(out.read_text())
    assert set(report["commands"]) == {"version", "pool"}
    for stats in report["commands"].values():
        assert stats["n"] == 1
        assert stats["min_ms"] == stats["median_ms"] == stats["max_ms"] > 0
    assert set(report["prepare_ms"]) >= {"setup", "faucet SOL"}
