"""Working with ``perpool-localnet``, the local validator that runs the Perpool program natively.

Three parts:

* locating and building the validator binary (a Cargo workspace under ``localnet/``);
* starting and stopping a validator process (:class:`LocalnetProcess`);
* async JSON-RPC helpers, including the localnet-only time-control methods
  ``localnet_advanceClock``, ``localnet_setClock`` and ``localnet_warpSlots``
  (:class:`LocalnetRpc`).
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment, Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

DEFAULT_PORT = 8899
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
BINARY_NAME = "perpool-localnet"
CARGO_PACKAGE = "perpool-localnet"
FAUCET_KEYPAIR_FILE = "faucet-keypair.json"
CLOCK_SYSVAR = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")

_SOURCE_NAMES = frozenset({"Cargo.toml", "Cargo.lock"})
_SKIP_DIRS = frozenset({"target", ".localnet", "node_modules", ".anchor"})


class LocalnetError(Exception):
    """The validator could not be found, built, started or reached."""


class LocalnetExited(LocalnetError):
    """The validator process exited before answering ``getHealth`` (e.g. its port was taken)."""


class RpcError(LocalnetError):
    """A JSON-RPC error object returned by the validator."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"JSON-RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


# --------------------------------------------------------------------------------------------
# Locating and building the binary
# --------------------------------------------------------------------------------------------


def _is_repo_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "localnet" / "Cargo.toml").is_file()


def find_repo_root(start: Path | None = None) -> Path:
    """Return the Perpool checkout (the directory holding ``pyproject.toml`` and ``localnet/``).

    Looks at ``$PERPOOL_ROOT``, then upwards from ``start`` (default: the current directory),
    then upwards from this file (an editable install lives inside the checkout).
    """
    env_root = os.environ.get("PERPOOL_ROOT")
    if env_root:
        root = Path(env_root).expanduser().resolve()
        if not _is_repo_root(root):
            raise LocalnetError(f"PERPOOL_ROOT={env_root} is not a Perpool checkout")
        return root
    candidates = [Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent]
    for base in candidates:
        for path in (base, *base.parents):
            if _is_repo_root(path):
                return path
    raise LocalnetError(
        "cannot find the Perpool checkout (pyproject.toml next to localnet/Cargo.toml); "
        "run from inside it or set PERPOOL_ROOT"
    )


def cargo_target_dir(root: Path | None = None) -> Path:
    """Cargo's target directory: ``$CARGO_TARGET_DIR`` or ``~/.cache/perpool/target``.

    A relative ``$CARGO_TARGET_DIR`` is taken relative to ``localnet/``, where cargo runs.
    """
    env = os.environ.get("CARGO_TARGET_DIR")
    if not env:
        return Path.home() / ".cache" / "perpool" / "target"
    path = Path(env).expanduser()
    if not path.is_absolute():
        path = (root or find_repo_root()) / "localnet" / path
    return path


def validator_binary(root: Path | None = None) -> Path:
    """Path of the release binary (``$PERPOOL_LOCALNET_BIN`` overrides it). It may not exist yet."""
    override = os.environ.get("PERPOOL_LOCALNET_BIN")
    if override:
        return Path(override).expanduser()
    return cargo_target_dir(root) / "release" / BINARY_NAME


def validator_sources(root: Path | None = None) -> Iterator[Path]:
    """Files under ``localnet/`` whose change requires a rebuild (Cargo.toml/.lock, ``*.rs``)."""
    base = (root or find_repo_root()) / "localnet"
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if name in _SOURCE_NAMES or name.endswith(".rs"):
                yield Path(dirpath) / name


def binary_is_stale(binary: Path, root: Path | None = None) -> bool:
    """True if ``binary`` is missing or older than any validator source file."""
    try:
        built = binary.stat().st_mtime
    except FileNotFoundError:
        return True
    return any(src.stat().st_mtime > built for src in validator_sources(root))


def build_validator(root: Path | None = None, *, quiet: bool = False) -> Path:
    """Run ``cargo build --release -p perpool-localnet`` in ``localnet/`` and return the binary."""
    root = root or find_repo_root()
    cargo = shutil.which("cargo")
    if cargo is None:
        raise LocalnetError(
            "cargo not found on PATH: install the Rust toolchain with rustup "
            "(https://rustup.rs) and try again"
        )
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = str(cargo_target_dir(root))
    cmd = [cargo, "build", "--release", "-p", CARGO_PACKAGE]
    if quiet:
        cmd.append("--quiet")
    print(f"building {BINARY_NAME}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    result = subprocess.run(cmd, cwd=root / "localnet", env=env, check=False)
    if result.returncode != 0:
        raise LocalnetError(f"cargo build failed with exit code {result.returncode}")
    binary = cargo_target_dir(root) / "release" / BINARY_NAME
    if not binary.is_file():
        raise LocalnetError(f"cargo build succeeded but {binary} does not exist")
    # Cargo does not relink when a changed file is not part of the binary (e.g. a test file);
    # the build is up to date all the same, so mark it as such for the staleness check.
    os.utime(binary)
    return binary


def ensure_validator(root: Path | None = None, *, quiet: bool = False) -> Path:
    """Return the binary, building it first if it is missing or older than its sources.

    ``$PERPOOL_LOCALNET_BIN`` names a prebuilt binary that is used as is.
    """
    if os.environ.get("PERPOOL_LOCALNET_BIN"):
        binary = validator_binary()
        if not binary.is_file():
            raise LocalnetError(f"PERPOOL_LOCALNET_BIN={binary} does not exist")
        return binary
    root = root or find_repo_root()
    binary = validator_binary(root)
    if binary_is_stale(binary, root):
        return build_validator(root, quiet=quiet)
    return binary


def find_validator(root: Path | None = None) -> Path:
    """Return the built binary without building; raise with a hint if it is missing."""
    binary = validator_binary(root)
    if not binary.is_file():
        raise LocalnetError(
            f"{binary} does not exist; build it with ./scripts/setup.sh "
            "(or: cd localnet && cargo build --release -p perpool-localnet)"
        )
    return binary


# --------------------------------------------------------------------------------------------
# Small utilities
# --------------------------------------------------------------------------------------------


def default_url() -> str:
    """``$PERPOOL_RPC_URL`` or ``http://127.0.0.1:8899``."""
    return os.environ.get("PERPOOL_RPC_URL") or DEFAULT_URL


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if ``port`` can be bound on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def read_keypair(path: Path | str) -> Keypair:
    """Load a keypair file in the Solana CLI format (a JSON array of 64 bytes)."""
    return Keypair.from_json(Path(path).read_text())


# --------------------------------------------------------------------------------------------
# Async JSON-RPC
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClockState:
    """What the localnet_* time-control methods return."""

    slot: int
    unix_timestamp: int

    @classmethod
    def from_json(cls, value: Any) -> ClockState:
        if not isinstance(value, dict) or "slot" not in value or "unixTimestamp" not in value:
            raise LocalnetError(f"unexpected localnet clock result: {value!r}")
        return cls(slot=int(value["slot"]), unix_timestamp=int(value["unixTimestamp"]))

    def to_json(self) -> dict[str, int]:
        return {"slot": self.slot, "unixTimestamp": self.unix_timestamp}


@dataclass(frozen=True)
class ClockSysvar:
    """The ``Clock`` sysvar as stored on chain."""

    slot: int
    epoch_start_timestamp: int
    epoch: int
    leader_schedule_epoch: int
    unix_timestamp: int

    _LAYOUT = struct.Struct("<QqQQq")

    @classmethod
    def decode(cls, data: bytes) -> ClockSysvar:
        if len(data) < cls._LAYOUT.size:
            raise LocalnetError(f"Clock sysvar data too short: {len(data)} bytes")
        return cls(*cls._LAYOUT.unpack_from(data))


class LocalnetRpc:
    """Minimal async JSON-RPC client for the calls solana-py does not cover.

    Use as an async context manager, or call :meth:`close`.
    """

    def __init__(self, url: str | None = None, *, timeout: float = 10.0) -> None:
        self.url = url or default_url()
        self._http = httpx.AsyncClient(timeout=timeout)
        self._ids = itertools.count(1)

    async def __aenter__(self) -> LocalnetRpc:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, params: Sequence[Any] | None = None) -> dict[str, Any]:
        """Send one request and return the whole response object (``result`` or ``error``)."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            body["params"] = list(params)
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise LocalnetError(f"cannot reach {self.url}: {exc}") from exc
        try:
            decoded = response.json()
        except ValueError as exc:
            raise LocalnetError(
                f"{self.url} answered HTTP {response.status_code} with a non-JSON body"
            ) from exc
        if not isinstance(decoded, dict):
            raise LocalnetError(f"unexpected JSON-RPC response: {decoded!r}")
        return decoded

    async def call(self, method: str, params: Sequence[Any] | None = None) -> Any:
        """Send one request; return ``result`` or raise :class:`RpcError`."""
        decoded = await self.request(method, params)
        error = decoded.get("error")
        if error is not None:
            raise RpcError(
                int(error.get("code", 0)), str(error.get("message", "")), error.get("data")
            )
        if "result" not in decoded:
            raise LocalnetError(f"JSON-RPC response without result: {decoded!r}")
        return decoded["result"]

    async def health(self) -> str:
        return str(await self.call("getHealth"))

    async def advance_clock(self, seconds: int) -> ClockState:
        """Move the Clock's unix_timestamp forward by ``seconds`` (for the next transaction)."""
        return ClockState.from_json(await self.call("localnet_advanceClock", [seconds]))

    async def set_clock(self, unix_timestamp: int) -> ClockState:
        """Set the Clock's unix_timestamp (for the next transaction)."""
        return ClockState.from_json(await self.call("localnet_setClock", [unix_timestamp]))

    async def warp_slots(self, slots: int) -> ClockState:
        """Skip ``slots`` slots forward."""
        return ClockState.from_json(await self.call("localnet_warpSlots", [slots]))

    async def get_clock(self, commitment: str = "processed") -> ClockSysvar:
        """Read and decode the Clock sysvar account."""
        value = (
            await self.call(
                "getAccountInfo",
                [str(CLOCK_SYSVAR), {"encoding": "base64", "commitment": commitment}],
            )
        )["value"]
        if value is None:
            raise LocalnetError("Clock sysvar account not found")
        return ClockSysvar.decode(base64.b64decode(value["data"][0]))


async def airdrop(
    client: AsyncClient,
    pubkey: Pubkey,
    lamports: int,
    commitment: Commitment = Confirmed,
) -> Signature:
    """Request an airdrop and wait until it reaches ``commitment``."""
    signature = (await client.request_airdrop(pubkey, lamports)).value
    await client.confirm_transaction(signature, commitment, sleep_seconds=0.1)
    return signature


async def wait_healthy(url: str, timeout: float = 60.0, interval: float = 0.05) -> None:
    """Poll ``getHealth`` until it answers ``"ok"``."""
    deadline = time.monotonic() + timeout
    async with LocalnetRpc(url, timeout=2.0) as rpc:
        while True:
            try:
                if await rpc.health() == "ok":
                    return
            except LocalnetError:
                pass
            if time.monotonic() > deadline:
                raise LocalnetError(f"{url} did not answer getHealth within {timeout:.0f}s")
            await asyncio.sleep(interval)


# --------------------------------------------------------------------------------------------
# Running a validator process
# --------------------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


_FAUCET_LINE = re.compile(
    r"^Faucet keypair: (?P<path>.+?)(?: \((?P<pubkey>[1-9A-HJ-NP-Za-km-z]{32,44})\))?$"
)


def parse_faucet_line(line: str) -> Path | None:
    """The path in a ``Faucet keypair: <path> [(<pubkey>)]`` startup line, else None."""
    match = _FAUCET_LINE.match(line.rstrip("\n"))
    return Path(match["path"]) if match else None


def health_ok(url: str, timeout: float = 1.0) -> bool:
    """One synchronous ``getHealth`` probe."""
    try:
        response = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}, timeout=timeout
        )
        return bool(response.json().get("result") == "ok")
    except (httpx.HTTPError, ValueError, AttributeError):
        return False


class LocalnetProcess:
    """A ``perpool-localnet`` child process with its own ledger directory and log files.

    >>> with LocalnetProcess.start() as net:   # doctest: +SKIP
    ...     print(net.url, net.faucet().pubkey())
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        *,
        port: int,
        host: str,
        ledger: Path,
        log_dir: Path,
        owns_ledger: bool,
    ) -> None:
        self.process = process
        self.port = port
        self.host = host
        self.ledger = ledger
        self.log_dir = log_dir
        self._owns_ledger = owns_ledger

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "localnet.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "localnet.stderr.log"

    @property
    def faucet_keypair_path(self) -> Path:
        """The path printed as ``Faucet keypair: ...`` (falls back to the ledger directory)."""
        try:
            for line in self.stdout_path.read_text(errors="replace").splitlines():
                path = parse_faucet_line(line)
                if path is not None:
                    return path
        except FileNotFoundError:
            pass
        return self.ledger / FAUCET_KEYPAIR_FILE

    def faucet(self) -> Keypair:
        return read_keypair(self.faucet_keypair_path)

    @classmethod
    def start(
        cls,
        *,
        binary: Path | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        ledger: Path | None = None,
        slot_ms: int | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 60.0,
    ) -> LocalnetProcess:
        """Launch the built binary and wait until it answers ``getHealth``.

        Without ``ledger`` a temporary directory is used and removed by :meth:`stop`. Without
        ``port`` a free one is picked, and picked again (up to three times) if the process dies
        before answering: another process may have taken the port in between.
        """
        binary = binary or find_validator()
        attempts = 1 if port else 3
        for attempt in range(attempts):
            try:
                return cls._start_once(
                    binary,
                    port or free_port(host),
                    host,
                    ledger,
                    slot_ms,
                    extra_args,
                    ready_timeout,
                )
            except LocalnetExited:
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(
        cls,
        binary: Path,
        port: int,
        host: str,
        ledger: Path | None,
        slot_ms: int | None,
        extra_args: Sequence[str],
        ready_timeout: float,
    ) -> LocalnetProcess:
        owns_ledger = ledger is None
        ledger_dir = (
            Path(tempfile.mkdtemp(prefix="perpool-localnet-")) if ledger is None else ledger
        )
        ledger_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(binary), "--port", str(port), "--ledger", str(ledger_dir)]
        if host != "127.0.0.1":
            cmd += ["--bind", host]
        if slot_ms is not None:
            cmd += ["--slot-ms", str(slot_ms)]
        cmd += list(extra_args)
        with (
            open(ledger_dir / "localnet.stdout.log", "wb") as out,
            open(ledger_dir / "localnet.stderr.log", "wb") as err,
        ):
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        net = cls(
            process,
            port=port,
            host=host,
            ledger=ledger_dir,
            log_dir=ledger_dir,
            owns_ledger=owns_ledger,
        )
        try:
            net.wait_ready(ready_timeout)
        except BaseException:
            net.stop()
            raise
        return net

    def tail(self, which: str = "stderr", limit: int = 4000) -> str:
        path = self.stderr_path if which == "stderr" else self.stdout_path
        try:
            return path.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.02) -> float:
        """Block until getHealth answers ``ok``; return the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                raise LocalnetExited(
                    f"{BINARY_NAME} exited with code {code} before answering getHealth.\n"
                    f"--- stderr ---\n{self.tail('stderr')}\n--- stdout ---\n{self.tail('stdout')}"
                )
            if health_ok(self.url, timeout=1.0):
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise LocalnetError(
                    f"{BINARY_NAME} on {self.url} did not answer getHealth within {timeout:.0f}s.\n"
                    f"--- stderr ---\n{self.tail('stderr')}"
                )
            time.sleep(interval)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate (then kill, if needed) the process and remove a temporary ledger."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if self._owns_ledger:
            shutil.rmtree(self.ledger, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> LocalnetProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
