"""Pyth pull-oracle ``PriceUpdateV2`` accounts as validator fixtures (``--account ADDRESS FILE``).

Layout (Anchor account of the Pyth receiver program, borsh): 8-byte discriminator
``sha256("account:PriceUpdateV2")[:8]``, write authority (32), verification level (enum:
``Partial { num_signatures: u8 }`` = 0, ``Full`` = 1), then the price feed message: feed id (32),
price i64, conf u64, exponent i32, publish_time i64, prev_publish_time i64, ema_price i64,
ema_conf u64; then posted_slot u64.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from solders.pubkey import Pubkey

PYTH_RECEIVER = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
DISCRIMINATOR = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]
# PriceUpdateV2::LEN in the receiver program (room for the 2-byte Partial variant).
ACCOUNT_LEN = 8 + 32 + 2 + 32 + 8 + 8 + 4 + 8 + 8 + 8 + 8 + 8


@dataclass(frozen=True)
class PriceUpdate:
    feed_id: bytes
    price: int
    conf: int
    exponent: int
    publish_time: int
    ema_price: int
    ema_conf: int = 0
    prev_publish_time: int | None = None
    partial_signatures: int | None = None
    """``None`` = Full verification; a number = Partial with that many signatures."""
    write_authority: Pubkey = field(default_factory=Pubkey.default)
    posted_slot: int = 1

    def encode(self, discriminator: bytes = DISCRIMINATOR) -> bytes:
        level = (
            bytes([1]) if self.partial_signatures is None else bytes([0, self.partial_signatures])
        )
        prev = self.publish_time - 1 if self.prev_publish_time is None else self.prev_publish_time
        message = self.feed_id + struct.pack(
            "<qQiqqqQ",
            self.price,
            self.conf,
            self.exponent,
            self.publish_time,
            prev,
            self.ema_price,
            self.ema_conf,
        )
        data = (
            discriminator
            + bytes(self.write_authority)
            + level
            + message
            + struct.pack("<Q", self.posted_slot)
        )
        return data.ljust(ACCOUNT_LEN, b"\0")


def write_fixture(
    path: Path,
    address: Pubkey,
    data: bytes,
    owner: Pubkey = PYTH_RECEIVER,
    lamports: int = 10_000_000,
) -> Path:
    """Writes ``data`` as an account fixture in the ``solana account --output json`` format."""
    fixture = {
        "pubkey": str(address),
        "account": {
            "lamports": lamports,
            "data": [base64.b64encode(data).decode(), "base64"],
            "owner": str(owner),
            "executable": False,
            "rentEpoch": 0,
            "space": len(data),
        },
    }
    path.write_text(json.dumps(fixture))
    return path
