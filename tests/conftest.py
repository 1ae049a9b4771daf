"""Shared fixtures: a real ``perpool-localnet`` process and clients talking to it over HTTP.

By default one validator is started for the whole session (free port, temporary ledger).
Set ``PERPOOL_RPC_URL`` to use an already-running localnet instead; its faucet keypair is read
from ``PERPOOL_FAUCET_KEYPAIR`` (default ``.localnet/faucet-keypair.json`` in the checkout).
Tests that need a chain fresh from genesis start their own validator via ``start_localnet``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from perpool.localnet import (
    FAUCET_KEYPAIR_FILE,
    LocalnetError,
    LocalnetProcess,
    LocalnetRpc,
    airdrop,
    binary_is_stale,
    find_repo_root,
    find_validator,
    health_ok,
    read_keypair,
)

pytest_plugins = ["adversarial_plugin"]

LAMPORTS_PER_SOL = 1_000_000_000
# Shorter slots than the validator's 400 ms default make confirmations quicker; override with
# PERPOOL_TEST_SLOT_MS to test at other speeds.
TEST_SLOT_MS = int(os.environ.get("PERPOOL_TEST_SLOT_MS", "100"))


_stale_warned = False


@dataclass(frozen=True)
class Localnet:
    url: str
    faucet: Keypair
    process: LocalnetProcess | None

    @property
    def spawned(self) -> bool:
        return self.process is not None


def start_validator(**kwargs: Any) -> LocalnetProcess:
    """Start a validator from genesis on a free port (fails the test with its stderr if it dies)."""
    try:
        binary = find_validator()
    except LocalnetError as exc:
        pytest.fail(str(exc), pytrace=False)
    global _stale_warned
    if not _stale_warned and binary_is_stale(binary):
        _stale_warned = True
        warnings.warn(
            f"{binary} is older than the sources under localnet/; "
            "run ./scripts/setup.sh to rebuild",
            stacklevel=2,
        )
    kwargs.setdefault("slot_ms", TEST_SLOT_MS)
    try:
        return LocalnetProcess.start(binary=binary, ready_timeout=60.0, **kwargs)
    except LocalnetError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def localnet() -> Iterator[Localnet]:
    url = os.environ.get("PERPOOL_RPC_URL")
    if url:
        deadline = time.monotonic() + 60
        while not health_ok(url):
            if time.monotonic() > deadline:
                pytest.fail(f"PERPOOL_RPC_URL={url} does not answer getHealth", pytrace=False)
            time.sleep(0.2)
        keypair_path = Path(
            os.environ.get("PERPOOL_FAUCET_KEYPAIR")
            or find_repo_root() / ".localnet" / FAUCET_KEYPAIR_FILE
        )
        yield Localnet(url=url, faucet=read_keypair(keypair_path), process=None)
        return
    net = start_validator()
    try:
        yield Localnet(url=net.url, faucet=net.faucet(), process=net)
        if not net.alive():
            pytest.fail(
                f"perpool-localnet died during the session (exit {net.process.returncode}):\n"
                + net.tail("stderr"),
                pytrace=False,
            )
    finally:
        net.stop()


@pytest.fixture
def start_localnet() -> Iterator[Callable[..., LocalnetProcess]]:
    """Factory for validators fresh from genesis; all of them are stopped after the test."""
    started: list[LocalnetProcess] = []

    def start(**kwargs: Any) -> LocalnetProcess:
        net = start_validator(**kwargs)
        started.append(net)
        return net

    yield start
    for net in started:
        net.stop()


@pytest.fixture
async def client(localnet: Localnet) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(localnet.url, commitment=Confirmed, timeout=30) as conn:
        yield conn


@pytest.fixture
async def rpc(localnet: Localnet) -> AsyncIterator[LocalnetRpc]:
    async with LocalnetRpc(localnet.url) as conn:
        yield conn


Funder = Callable[..., Awaitable[Keypair]]


@pytest.fixture
def funded(client: AsyncClient) -> Funder:
    """``await funded(lamports)`` returns a new keypair holding exactly ``lamports``."""

    async def make(lamports: int = 10 * LAMPORTS_PER_SOL) -> Keypair:
        keypair = Keypair()
        await airdrop(client, keypair.pubkey(), lamports)
        return keypair

    return make


def websocket_url(net: Localnet | LocalnetProcess) -> str:
    """The pubsub URL: the ``WebSocket URL:`` line a spawned validator prints, else the RPC
    port + 1 (where solana-test-validator and perpool-localnet listen by default)."""
    process = net if isinstance(net, LocalnetProcess) else net.process
    if process is not None:
        try:
            for line in process.stdout_path.read_text(errors="replace").splitlines():
                if line.startswith("WebSocket URL: "):
                    return line.removeprefix("WebSocket URL: ").strip()
        except FileNotFoundError:
            pass
    parsed = urlsplit(net.url)
    return f"ws://{parsed.hostname}:{(parsed.port or 8899) + 1}"


@pytest.fixture
def ws_url(localnet: Localnet) -> str:
    return websocket_url(localnet)
