"""Sending keeper transactions: simulate, size compute, price priority, sign, send, rebroadcast.

* One transaction in flight per target (a position, a custody, a pool, an oracle): a second
  request for a busy target is skipped, not queued (the next tick re-evaluates anyway).
* The same signed bytes are re-sent every ``rebroadcast_interval_sec`` until the transaction is
  confirmed or its blockhash's last valid block height has passed; only then are the
  instructions rebuilt (from fresh chain state) and re-signed, up to ``max_rebuilds`` times.
* Compute limit = simulated units plus a margin; priority fee = a percentile of the recent
  prioritization fees of the writable accounts, between a floor and a cap.
* A failed simulation is a ``rejected`` outcome carrying the program error's name: normal
  business for a keeper (somebody else was faster, the position recovered), never an exception.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus

from perpool.client import PerpoolClient
from perpool.errors import program_error_from
from perpool.program import parse_events
from perpool_keeper.config import TxConfig
from perpool_keeper.logs import log
from perpool_keeper.metrics import Metrics
from perpool_keeper.rpc import RpcPool, RpcUnavailable

logger = logging.getLogger("perpool_keeper.sender")

MAX_COMPUTE_UNITS = 1_400_000
_SEND_OPTS = TxOpts(skip_preflight=True, skip_confirmation=True)
_CONFIRMED = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)
CONFIRM_DEADLINE_SEC = 180.0
"""Give up waiting (outcome ``unknown``) when the RPC stays unreachable this long."""

Builder = Callable[[], Awaitable[Sequence[Instruction]]]


@dataclass
class TxResult:
    status: str
    """``landed``, ``simulated``, ``rejected`` (simulation failed), ``failed`` (landed with an
    error), ``expired`` (every rebuild expired), ``skipped`` (target busy or nothing to do),
    ``unknown`` (RPC unreachable while waiting)."""
    kind: str
    target: str
    signature: str | None = None
    slot: int | None = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    def event(self, name: str) -> Any | None:
        return next((e.data for e in self.events if e.name == name), None)


class TxSender:
    def __init__(
        self,
        rpc: RpcPool,
        payer: Keypair,
        config: TxConfig,
        metrics: Metrics,
        *,
        dry_run: bool = False,
    ) -> None:
        self.rpc = rpc
        self.payer = payer
        self.config = config
        self.metrics = metrics
        self.dry_run = dry_run
        self.inflight: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def busy(self, target: str) -> bool:
        return target in self.inflight

    async def submit(
        self,
        kind: str,
        target: str,
        build: Builder,
        signers: Sequence[Keypair] = (),
    ) -> TxResult:
        """Builds, simulates and (unless dry run) sends and confirms one transaction."""
        if target in self.inflight:
            self.metrics.tx_inflight_skips.labels(kind=kind).inc()
            return TxResult("skipped", kind, target, error="in flight")
        self.inflight.add(target)
        try:
            return await self._submit(kind, target, build, signers)
        finally:
            self.inflight.discard(target)

    async def _submit(
        self, kind: str, target: str, build: Builder, signers: Sequence[Keypair]
    ) -> TxResult:
        all_signers = [self.payer, *[s for s in signers if s.pubkey() != self.payer.pubkey()]]
        for rebuild in range(self.config.max_rebuilds + 1):
            if rebuild:
                self.metrics.tx_rebuilds.inc()
            ixs = list(await build())
            if not ixs:
                return TxResult("skipped", kind, target, error="nothing to do")
            latest = (
                await self.rpc.call(lambda c: c.connection.get_latest_blockhash(Confirmed))
            ).value
            blockhash, last_valid = latest.blockhash, latest.last_valid_block_height
            fee = await self.priority_fee(ixs)
            probe = self._sign(ixs, all_signers, blockhash, MAX_COMPUTE_UNITS, fee)
            sim = await self._simulate(probe)
            logs = list(sim.logs or [])
            if sim.err is not None:
                error = self._error_name(sim.err, logs)
                self._count_failure(kind, "simulation", error)
                return TxResult("rejected", kind, target, error=error, logs=logs)
            if self.dry_run:
                self.metrics.tx_simulated.labels(kind=kind).inc()
                return TxResult("simulated", kind, target, logs=logs, events=self._events(logs))
            units = int(sim.units_consumed or 0)
            limit = max(
                self.config.compute_unit_floor,
                units * (100 + self.config.compute_margin_pct) // 100,
            )
            tx = self._sign(ixs, all_signers, blockhash, min(limit, MAX_COMPUTE_UNITS), fee)
            self.metrics.priority_fee.set(fee)
            result = await self._land(kind, target, tx, last_valid)
            if result is not None:
                return result
            log(logger, logging.INFO, "blockhash expired, rebuilding", kind=kind, target=target)
        self._count_failure(kind, "expired")
        return TxResult("expired", kind, target, error="blockhash expired on every rebuild")

    async def _simulate(self, tx: Transaction) -> Any:
        resp = await self.rpc.call(
            lambda c: c.connection.simulate_transaction(tx, sig_verify=False, commitment=Confirmed),
            "simulateTransaction",
        )
        return resp.value

    def _sign(
        self,
        ixs: Sequence[Instruction],
        signers: Sequence[Keypair],
        blockhash: Hash,
        units: int,
        fee: int,
    ) -> Transaction:
        budget = [set_compute_unit_limit(units)]
        if fee > 0:
            budget.append(set_compute_unit_price(fee))
        message = Message([*budget, *ixs], self.payer.pubkey())
        return Transaction(list(signers), message, blockhash)

    async def priority_fee(self, ixs: Sequence[Instruction]) -> int:
        writable = sorted({str(m.pubkey) for ix in ixs for m in ix.accounts if m.is_writable})[:128]
        try:
            rows = await self.rpc.raw("getRecentPrioritizationFees", [writable])
        except Exception as exc:
            log(logger, logging.WARNING, "priority fees unavailable", error=str(exc))
            rows = []
        fees = sorted(int(r.get("prioritizationFee", 0)) for r in rows or [])
        fee = 0
        if fees:
            rank = min(len(fees) - 1, len(fees) * self.config.priority_fee_percentile // 100)
            fee = fees[rank]
        return min(
            self.config.priority_fee_cap_micro_lamports,
            max(self.config.priority_fee_min_micro_lamports, fee),
        )

    async def _land(
        self, kind: str, target: str, tx: Transaction, last_valid: int
    ) -> TxResult | None:
        """Sends ``tx`` and re-sends the same bytes until it lands or expires (→ None)."""
        raw = bytes(tx)
        signature = tx.signatures[0]
        self.metrics.tx_sent.labels(kind=kind).inc()
        log(logger, logging.INFO, "sending", kind=kind, target=target, signature=str(signature))
        await self._send(raw)
        last_send = time.monotonic()
        deadline = time.monotonic() + CONFIRM_DEADLINE_SEC
        while time.monotonic() < deadline:
            await asyncio.sleep(self.config.confirm_poll_sec)
            try:
                status = (
                    await self.rpc.call(
                        lambda c: c.connection.get_signature_statuses([signature]),
                        "getSignatureStatuses",
                    )
                ).value[0]
                if status is not None and (
                    status.err is not None or status.confirmation_status in _CONFIRMED
                ):
                    return await self._landed(kind, target, signature, status.slot, status.err)
                height = await self.rpc.call(
                    lambda c: c.connection.get_block_height(Confirmed), "getBlockHeight"
                )
                if height.value > last_valid:
                    # One last look: it may have landed in the final valid block.
                    final = (
                        await self.rpc.call(
                            lambda c: c.connection.get_signature_statuses([signature])
                        )
                    ).value[0]
                    if final is not None:
                        return await self._landed(kind, target, signature, final.slot, final.err)
                    return None
                if time.monotonic() - last_send >= self.config.rebroadcast_interval_sec:
                    self.metrics.tx_rebroadcasts.inc()
                    await self._send(raw)
                    last_send = time.monotonic()
            except RpcUnavailable as exc:
                log(logger, logging.WARNING, "waiting for the RPC", target=target, error=str(exc))
        self._count_failure(kind, "unknown")
        return TxResult("unknown", kind, target, signature=str(signature), error="rpc unreachable")

    async def _send(self, raw: bytes) -> None:
        try:
            await self.rpc.call(
                lambda c: c.connection.send_raw_transaction(raw, _SEND_OPTS), "sendTransaction"
            )
        except RpcUnavailable as exc:
            log(logger, logging.WARNING, "send failed, will rebroadcast", error=str(exc))
        except Exception as exc:
            # A node may refuse a duplicate or an already-processed transaction; the status
            # poll decides what happened.
            log(logger, logging.INFO, "send refused", error=str(exc))

    async def _landed(
        self, kind: str, target: str, signature: Signature, slot: int, err: Any
    ) -> TxResult:
        logs: list[str] = []
        try:
            landed = await self.rpc.call(
                lambda c: c.connection.get_transaction(
                    signature, commitment=Confirmed, max_supported_transaction_version=0
                ),
                "getTransaction",
            )
            meta = landed.value.transaction.meta if landed.value is not None else None
            logs = list(meta.log_messages or []) if meta is not None else []
        except Exception as exc:
            log(logger, logging.WARNING, "landed transaction not readable", error=str(exc))
        if err is not None:
            error = self._error_name(err, logs)
            self._count_failure(kind, "landed_error", error)
            return TxResult(
                "failed",
                kind,
                target,
                signature=str(signature),
                slot=slot,
                error=error,
                logs=logs,
            )
        self.metrics.tx_landed.labels(kind=kind).inc()
        return TxResult(
            "landed",
            kind,
            target,
            signature=str(signature),
            slot=slot,
            logs=logs,
            events=self._events(logs),
        )

    @property
    def _client(self) -> PerpoolClient:
        return self.rpc.client

    def _count_failure(self, kind: str, reason: str, error: str = "") -> None:
        self.metrics.tx_failed.labels(kind=kind, reason=reason, error=error_label(error)).inc()

    def _error_name(self, err: Any, logs: Sequence[str]) -> str:
        named = program_error_from(err, logs, self._client.program.idl)
        if named is not None:
            return str(named["name"])
        return str(err)

    def _events(self, logs: Sequence[str]) -> list[Any]:
        try:
            return parse_events(self._client.program, logs)
        except Exception:
            return []


def error_label(error: str) -> str:
    """The metric label for a failure: the program error's name, or the leading name of a
    runtime error (``InstructionError(...)`` -> ``InstructionError``), so the label set stays
    small; empty when there is no error to name."""
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", error)
    return match.group(0) if match else ""


def target_of(key: Pubkey | str) -> str:
    return str(key)
