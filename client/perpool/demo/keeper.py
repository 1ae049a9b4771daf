"""The keeper of the demo: the real ``perpool-keeper`` daemon as a subprocess, with a generated
TOML config and one CSV price feed per custody, its JSON log in a file and its Prometheus
metrics read over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from solders.keypair import Keypair

from perpool.demo.pricepath import EXPO, PricePath
from perpool.exchange import Exchange
from perpool.localnet import _die_with_parent, free_port

ORACLE_INTERVAL_SEC = 1.0
LIQUIDATION_INTERVAL_SEC = 1.0
CONF_BPS = 2
STOP_TIMEOUT_SEC = 20.0


def write_keypair(path: Path, keypair: Keypair) -> Path:
    path.write_text(json.dumps(list(bytes(keypair))))
    path.chmod(0o600)
    return path


@dataclass(frozen=True)
class KeeperSetup:
    directory: Path
    config: Path
    log: Path
    port: int
    keypair: Keypair


def _toml_str(value: str | Path) -> str:
    return json.dumps(str(value))


def write_config(
    directory: Path,
    *,
    url: str,
    ex: Exchange,
    path: PricePath,
    keeper: Keypair,
    oracle_authority: Keypair,
    step_seconds: float,
    shortest_jump_sec: int,
) -> KeeperSetup:
    """The price CSVs, keypair files and ``keeper.toml`` under ``directory``.

    Every feed posts on any change (``deviation_bps`` 1) and re-posts once its on-chain price is
    ``heartbeat_sec`` old, which is less than one step of the compressed clock, so prices stay
    fresh across the clock jumps. Borrow/funding accrual and the AUM refresh run once a step.
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    prices = directory / "prices"
    prices.mkdir(exist_ok=True)
    keeper_file = write_keypair(directory / "keeper-keypair.json", keeper)
    authority_file = write_keypair(directory / "oracle-authority.json", oracle_authority)
    port = free_port()
    heartbeat = max(30, min(600, shortest_jump_sec // 2))
    lines = [
        "# perpool-keeper configuration written by the Perpool demo",
        "[keeper]",
        f"keypair = {_toml_str(keeper_file)}",
        f"pools = [{_toml_str(ex.pool_name)}]",
        'log_level = "INFO"',
        "drain_timeout_sec = 10",
        "",
        "[rpc]",
        f"urls = [{_toml_str(url)}]",
        "timeout_sec = 10",
        "backoff_base_sec = 0.05",
        "",
        "[tx]",
        "rebroadcast_interval_sec = 0.5",
        "confirm_poll_sec = 0.05",
        "",
        "[http]",
        'host = "127.0.0.1"',
        f"port = {port}",
        "",
        "[health]",
        "interval_sec = 1",
        "",
        "[jobs.oracle]",
        "enabled = true",
        f"interval_sec = {ORACLE_INTERVAL_SEC}",
        "deviation_bps = 1",
        f"heartbeat_sec = {heartbeat}",
        f"authority_keypair = {_toml_str(authority_file)}",
    ]
    # The leader feed goes last: once its step price is on chain, the others' are too.
    feeds = sorted(path.feeds, key=lambda s: s == "SOL")
    for symbol in feeds:
        token = ex.token(symbol)
        csv = path.write_csv(symbol, prices / f"{symbol}.csv", step_seconds)
        lines += [
            "",
            "[[jobs.oracle.feeds]]",
            f"pool = {_toml_str(ex.pool_name)}",
            f"mint = {_toml_str(str(token.mint))}",
            'source = "csv"',
            f"path = {_toml_str(csv)}",
            f"expo = {EXPO}",
            f"conf_bps = {CONF_BPS}",
            "max_source_age_sec = 3600",
        ]
    lines += [
        "",
        "[jobs.accrual]",
        f"interval_sec = {step_seconds}",
        "funding = true",
        "",
        "[jobs.liquidation]",
        f"interval_sec = {LIQUIDATION_INTERVAL_SEC}",
        "",
        "[jobs.aum]",
        f"interval_sec = {step_seconds}",
    ]
    config = directory / "keeper.toml"
    config.write_text("\n".join(lines) + "\n")
    return KeeperSetup(directory, config, directory / "keeper.log", port, keeper)


def keeper_command(config: Path) -> list[str]:
    """The installed ``perpool-keeper`` next to this interpreter, else the same module run by
    it."""
    script = Path(sys.executable).parent / "perpool-keeper"
    if script.exists():
        return [str(script), "--config", str(config)]
    found = shutil.which("perpool-keeper")
    if found:
        return [found, "--config", str(config)]
    return [sys.executable, "-m", "perpool_keeper.cli", "--config", str(config)]


class KeeperProcess:
    def __init__(self, setup: KeeperSetup) -> None:
        self.setup = setup
        self._log: IO[bytes] = setup.log.open("ab")
        self.process = subprocess.Popen(
            keeper_command(setup.config),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env={**os.environ},
            # Ends with the demo, like the localnet it starts.
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self.started = time.monotonic()

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.setup.port}/metrics"

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.setup.log.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    async def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics`` by ``name{label="value",...}``."""
        async with httpx.AsyncClient(timeout=5) as http:
            resp = await http.get(self.metrics_url)
            resp.raise_for_status()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(resp.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = float(sample.value)
        return out

    def stop(self) -> int | None:
        """SIGTERM (the daemon drains its running ticks), then SIGKILL after a timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SEC)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


def log_events(log: Path, message: str) -> list[dict[str, Any]]:
    """The keeper's JSON log records with this ``msg``."""
    out: list[dict[str, Any]] = []
    try:
        lines = log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("msg") == message:
            out.append(record)
    return out


def metric_total(metrics: dict[str, float], name: str) -> float:
    """Sum of a metric over its labels."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))
