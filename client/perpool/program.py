"""The Perpool on-chain program: id, PDAs, IDL, errors and events."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from anchorpy import Event, EventParser, Idl, Program, Provider
from solana.rpc.types import MemcmpOpts
from solders.pubkey import Pubkey

from perpool.localnet import find_repo_root

PROGRAM_ID = Pubkey.from_string("49sMQuhmLDssg8CxiHZXfg736edm8L76RKvG594gc8oc")


def account_discriminator(name: str) -> bytes:
    """The 8-byte Anchor account discriminator: ``sha256("account:<Name>")[:8]``."""
    return hashlib.sha256(f"account:{name}".encode()).digest()[:8]


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

POSITION_POOL_OFFSET = 8 + 32
"""Offset of ``Position.pool`` in the account data (after the discriminator and the owner)."""


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet), as ``getProgramAccounts`` memcmp filters expect."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_B58_ALPHABET[rem])
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(digits))


def pool_position_filters(pool_key: Pubkey) -> list[MemcmpOpts]:
    """``getProgramAccounts`` filters for the positions of one pool: the ``Position``
    discriminator and the pool address."""
    return [
        MemcmpOpts(offset=0, bytes=b58encode(account_discriminator("Position"))),
        MemcmpOpts(offset=POSITION_POOL_OFFSET, bytes=str(pool_key)),
    ]


def event_discriminator(name: str) -> bytes:
    """The 8-byte Anchor event discriminator: ``sha256("event:<Name>")[:8]``."""
    return hashlib.sha256(f"event:{name}".encode()).digest()[:8]


def idl_path(root: Path | None = None) -> Path:
    return (root or find_repo_root()) / "idl" / "perpool.json"


def load_idl(path: Path | None = None) -> Idl:
    """Parse ``idl/perpool.json`` (legacy Anchor IDL format, as anchorpy 0.21 reads it)."""
    return Idl.from_json((path or idl_path()).read_text())


def load_program(provider: Provider, idl: Idl | None = None) -> Program:
    return Program(idl or load_idl(), PROGRAM_ID, provider)


def error_names(idl: Idl) -> dict[int, str]:
    """Program error code → variant name (``6000`` → ``"MathOverflow"``)."""
    return {err.code: err.name for err in (idl.errors or [])}


def parse_events(program: Program, logs: Iterable[str]) -> list[Event]:
    """Decode the Anchor events (``Program data: ...`` lines) in a transaction's logs."""
    events: list[Event] = []
    EventParser(program.program_id, program.coder).parse_logs(list(logs), events.append)
    return events
