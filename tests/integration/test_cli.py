"""The console scripts, run as a user would run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from perpool import __version__
from perpool.localnet import LocalnetProcess, find_validator

BIN = Path(sys.executable).parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version() -> None:
    result = run("perpool", "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"perpool {__version__}"


def test_keeper_is_an_honest_placeholder() -> None:
    result = run("perpool-keeper")
    assert result.returncode == 2
    assert "not implemented" in result.stderr


def test_time_and_slot_commands(start_localnet: Callable[..., LocalnetProcess]) -> None:
    net = start_localnet()
    before = json.loads(run("perpool", "localnet", "clock", "--json", "--url", net.url).stdout)

    result = run("perpool", "--url", net.url, "localnet", "time", "advance", "3600", "--json")
    assert result.returncode == 0, result.stderr
    advanced = json.loads(result.stdout)
    assert advanced["unixTimestamp"] >= before["unixTimestamp"] + 3600

    result = run("perpool", "localnet", "slots", "advance", "25", "--json", "--url", net.url)
    assert result.returncode == 0, result.stderr
    warped = json.loads(result.stdout)
    assert warped["slot"] >= before["slot"] + 25

    result = run("perpool", "localnet", "time", "set", "1900000000", "--url", net.url)
    assert result.returncode == 0, result.stderr
    assert "unix_timestamp 19000000" in result.stdout


def test_unreachable_url_is_a_clean_error() -> None:
    result = run("perpool", "localnet", "time", "advance", "1", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach http://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_negative_seconds_rejected() -> None:
    result = run("perpool", "localnet", "time", "advance", "--", "-5")
    assert result.returncode == 2
    assert "must not be negative" in result.stderr


def test_localnet_wrapper_execs_the_binary() -> None:
    try:
        binary = find_validator()
    except Exception as exc:  # pragma: no cover - the session fixture reports this better
        pytest.fail(str(exc))
    # PERPOOL_LOCALNET_BIN skips the staleness check, so no cargo build runs here.
    result = run("perpool-localnet", "--help", env={"PERPOOL_LOCALNET_BIN": str(binary)})
    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--slot-ms", "--ledger", "--reset", "--account", "--quiet"):
        assert flag in result.stdout
