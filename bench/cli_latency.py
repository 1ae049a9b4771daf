"""Wall time of real ``perpool`` CLI commands, start of the process to its exit.

    .venv/bin/python bench/cli_latency.py                      # own localnet, 5 runs each
    .venv/bin/python bench/cli_latency.py --runs 10 --commands pool,swap
    .venv/bin/python bench/cli_latency.py --url http://127.0.0.1:8899

Each command runs as a user runs it: the installed ``perpool`` console script, a fresh
process, under a temporary HOME whose Solana CLI config names the localnet and a new keypair
(``~/.config/solana/cli/config.yml``), ``--json`` output. Preparation (timed once, not part of
the table): ``perpool setup`` (the shipped spec's pool, this keypair as admin), ``faucet`` SOL
and USDC, and ``lp deposit`` of both so that quotes and swaps have a pool to work with. Then
the commands run ``--runs`` times each, interleaved (run 1 of every command, then run 2, ...),
so a burst of other load on the machine spreads over all of them. Every run must exit 0.

Commands (``--commands``, comma-separated; default all): ``version`` (``--version``: Python
start-up and imports only), ``pool``, ``positions``, ``balances``, ``quote-open``,
``quote-swap``, ``open-simulate``, ``swap`` (sent and confirmed), ``lp-deposit`` (sent and
confirmed). Reported per command: median, min, max and p90 in milliseconds; JSON in
``bench/results/cli_latency.json`` or ``--json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib import (
    RESULTS_DIR,
    check_loopback,
    console_script,
    format_table,
    machine,
    percentile,
    write_json,
)
from solders.keypair import Keypair

from perpool.localnet import LocalnetError, LocalnetProcess

COMMANDS: dict[str, list[str]] = {
    "version": ["--version"],
    "pool": ["pool", "--json"],
    "positions": ["positions", "--json"],
    "balances": ["balances", "--json"],
    "quote-open": [
        "quote",
        "open",
        "SOL",
        "long",
        "--collateral",
        "1",
        "--leverage",
        "3",
        "--json",
    ],
    "quote-swap": ["quote", "swap", "USDC", "SOL", "100", "--json"],
    "open-simulate": [
        "open",
        *("SOL", "long", "--collateral", "1", "--leverage", "3"),
        *("--simulate", "--json"),
    ],
    "swap": ["swap", "USDC", "SOL", "10", "--json"],
    "lp-deposit": ["lp", "deposit", "USDC", "100", "--json"],
}
PREPARE: list[tuple[str, list[str]]] = [
    ("setup", ["setup", "--json"]),
    ("faucet SOL", ["faucet", "SOL", "1000", "--sol", "10", "--json"]),
    ("faucet USDC", ["faucet", "USDC", "1000000", "--json"]),
    ("lp deposit SOL", ["lp", "deposit", "SOL", "500", "--json"]),
    ("lp deposit USDC", ["lp", "deposit", "USDC", "500000", "--json"]),
]
# Settings that would override the temporary HOME's Solana CLI config.
_ENV_OVERRIDES = ("PERPOOL_RPC_URL", "PERPOOL_KEYPAIR", "SOLANA_CONFIG", "PERPOOL_POOL_CONFIG")


class CommandFailed(Exception):
    pass


class Cli:
    def __init__(self, home: Path, timeout: float) -> None:
        self.home = home
        self.timeout = timeout
        self.env = {k: v for k, v in os.environ.items() if k not in _ENV_OVERRIDES}
        self.env["HOME"] = str(home)
        self.command = console_script("perpool")

    def run(self, name: str, args: Sequence[str]) -> float:
        """Seconds from starting the process to its exit; raises unless it exits 0."""
        started = time.perf_counter()
        result = subprocess.run(
            [*self.command, *args],
            capture_output=True,
            text=True,
            timeout=self.timeout,
            env=self.env,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise CommandFailed(
                f"{name}: `perpool {' '.join(args)}` exited {result.returncode}: "
                f"{(result.stdout + result.stderr).strip()[-1500:]}"
            )
        return elapsed


def prepare_home(home: Path, url: str) -> Keypair:
    keypair = Keypair()
    key_path = home / "id.json"
    key_path.write_text(keypair.to_json())
    key_path.chmod(0o600)
    config = home / ".config" / "solana" / "cli" / "config.yml"
    config.parent.mkdir(parents=True)
    config.write_text(f"json_rpc_url: {url}\nkeypair_path: {key_path}\n")
    return keypair


def stats(seconds: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
        "p90_ms": round(percentile(ms, 0.9), 1),
        "all_ms": [round(m, 1) for m in ms],
    }


def measure(url: str, names: Sequence[str], runs: int, timeout: float) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="perpool-cli-bench-"))
    try:
        prepare_home(home, url)
        cli = Cli(home, timeout)
        prepared = {}
        for name, args in PREPARE:
            prepared[name] = round(cli.run(name, args) * 1000, 1)
            print(f"prepare {name}: {prepared[name]} ms", flush=True)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for run in range(runs):
            for name in names:
                samples[name].append(cli.run(name, COMMANDS[name]))
            print(
                f"run {run + 1}/{runs}: "
                + ", ".join(f"{n} {samples[n][-1] * 1000:.0f} ms" for n in names),
                flush=True,
            )
        return {
            "prepare_ms": prepared,
            "commands": {
                name: {"argv": ["perpool", *COMMANDS[name]], **stats(samples[name])}
                for name in names
            },
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="perpool CLI command latency")
    parser.add_argument("--url", help="a running localnet (loopback); default: start one")
    parser.add_argument("--runs", type=int, default=5, help="runs of each command")
    parser.add_argument(
        "--commands", default=",".join(COMMANDS), help=f"comma-separated: {', '.join(COMMANDS)}"
    )
    parser.add_argument("--slot-ms", type=int, help="slot length of the localnet started here")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per command")
    parser.add_argument(
        "--json", type=Path, default=RESULTS_DIR / "cli_latency.json", help="JSON output"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.commands.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMMANDS]
    if not names or unknown:
        parser.error(f"--commands: unknown {unknown}; known: {', '.join(COMMANDS)}")
    if not 1 <= args.runs <= 1000:
        parser.error("--runs: between 1 and 1000")

    net: LocalnetProcess | None = None
    try:
        if args.url:
            check_loopback(args.url)
            url = args.url
        else:
            net = LocalnetProcess.start(slot_ms=args.slot_ms)
            url = net.url
        result = measure(url, names, args.runs, args.timeout)
    except (LocalnetError, CommandFailed, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if net is not None:
            net.stop()
    report = {
        "url": url,
        "slot_ms": args.slot_ms,
        "runs": args.runs,
        "machine": machine(),
        **result,
    }
    write_json(args.json, report)
    rows = [
        [name, s["n"], s["median_ms"], s["min_ms"], s["p90_ms"], s["max_ms"]]
        for name, s in report["commands"].items()
    ]
    print()
    print(format_table(["command", "runs", "median ms", "min ms", "p90 ms", "max ms"], rows))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
