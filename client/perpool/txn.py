"""Simulate, send and confirm one transaction, with the program's events decoded.

Every transaction is simulated first, so a failing one is reported with the program error's
name and logs and never lands (no fee is paid); ``simulate=True`` stops after the simulation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solana.rpc.types import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus

from perpool.client import PerpoolClient
from perpool.errors import PerpoolError, transaction_failure
from perpool.program import parse_events

# The simulation just ran; a second one in preflight would only cost a round trip.
_LAND_OPTS = TxOpts(skip_preflight=True, skip_confirmation=True)
CONFIRM_TIMEOUT_SECONDS = 60.0

_CONFIRMED = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)

Status = Callable[[str], None]


@dataclass
class TxOutcome:
    simulated: bool
    signature: str | None
    logs: list[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    units_consumed: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "simulated": self.simulated,
            "signature": self.signature,
            "events": self.events,
        }
        if self.simulated:
            out["logs"] = self.logs
            out["unitsConsumed"] = self.units_consumed
        return out

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e["data"] for e in self.events if e["name"] == name), None)


def jsonable(value: Any) -> Any:
    """Decoded account/event values as JSON: integers as decimal strings (raw on-chain units),
    addresses base58, enum variants by name, nested structs as objects with camelCase keys."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Pubkey):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {_camel(str(k)): jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    attribs = getattr(type(value), "_sumtype_attribs", None)
    if attribs is not None:  # a Borsh enum variant (anchorpy "sumtypes")
        names = [a.name for a in attribs] if attribs else []
        if not names:
            return type(value).__name__.lower()
        return {
            type(value).__name__.lower(): {_camel(n): jsonable(getattr(value, n)) for n in names}
        }
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        if not fields:  # an enum variant without fields, e.g. Side.Long()
            return type(value).__name__.lower()
        return {_camel(k): jsonable(getattr(value, k)) for k in fields}
    return str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def decode_events(client: PerpoolClient, logs: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": e.name, "data": jsonable(e.data)} for e in parse_events(client.program, logs)]


async def run(
    client: PerpoolClient,
    ixs: Sequence[Instruction],
    signers: Sequence[Keypair] = (),
    *,
    simulate: bool = False,
    status: Status | None = None,
) -> TxOutcome:
    """Simulates ``ixs`` (payer = the client's payer); unless ``simulate``, sends and confirms
    them and returns the landed transaction's logs and events."""
    conn = client.connection
    say = status or (lambda _msg: None)
    say("simulating")
    blockhash = (await conn.get_latest_blockhash(Confirmed)).value.blockhash
    all_signers = [client.payer, *[s for s in signers if s.pubkey() != client.payer.pubkey()]]
    tx = Transaction(all_signers, Message(list(ixs), client.payer.pubkey()), blockhash)
    sim = (await conn.simulate_transaction(tx, sig_verify=True, commitment=Confirmed)).value
    logs = list(sim.logs or [])
    if sim.err is not None:
        raise transaction_failure(sim.err, logs, client.program.idl)
    if simulate:
        return TxOutcome(
            simulated=True,
            signature=None,
            logs=logs,
            events=decode_events(client, logs),
            units_consumed=sim.units_consumed,
        )
    say("sending")
    signature = (await conn.send_raw_transaction(bytes(tx), _LAND_OPTS)).value
    say(f"waiting for confirmation of {signature}")
    await _confirm(client, signature)
    landed = await conn.get_transaction(
        signature, commitment=Confirmed, max_supported_transaction_version=0
    )
    meta = landed.value.transaction.meta if landed.value is not None else None
    logs = list(meta.log_messages or []) if meta is not None else []
    if meta is not None and meta.err is not None:
        raise transaction_failure(meta.err, logs, client.program.idl, signature=str(signature))
    return TxOutcome(
        simulated=False,
        signature=str(signature),
        logs=logs,
        events=decode_events(client, logs),
        units_consumed=meta.compute_units_consumed if meta is not None else None,
    )


async def _confirm(client: PerpoolClient, signature: Signature) -> None:
    deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
    while True:
        status = (await client.connection.get_signature_statuses([signature])).value[0]
        if status is not None and status.confirmation_status in _CONFIRMED:
            return
        if time.monotonic() > deadline:
            raise PerpoolError(
                f"transaction {signature} was not confirmed within {CONFIRM_TIMEOUT_SECONDS:.0f}s",
                code="confirmation_timeout",
                signature=str(signature),
            )
        await asyncio.sleep(0.05)
