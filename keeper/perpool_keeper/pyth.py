"""Pyth pull-oracle ``PriceUpdateV2`` accounts (the layout the program reads)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from solders.pubkey import Pubkey

PYTH_RECEIVER = Pubkey.from_string("rec5EKMGg6MxZYaMdyBfgwp4d5rB9T1VQH5pJv5LtFJ")
DISCRIMINATOR = hashlib.sha256(b"account:PriceUpdateV2").digest()[:8]


class PythAccountError(ValueError):
    pass


@dataclass(frozen=True)
class PythPrice:
    feed_id: bytes
    fully_verified: bool
    price: int
    conf: int
    expo: int
    publish_time: int
    ema: int


def parse_price_update(data: bytes) -> PythPrice:
    """Decodes a ``PriceUpdateV2`` account's data (discriminator, write authority,
    verification level, then the price feed message)."""
    if len(data) < 8 or data[:8] != DISCRIMINATOR:
        raise PythAccountError("not a PriceUpdateV2 account")
    offset = 8 + 32
    if len(data) <= offset:
        raise PythAccountError("truncated PriceUpdateV2 account")
    level = data[offset]
    offset += 1 if level == 1 else 2  # Full = 1; Partial { num_signatures: u8 } = 0
    message = data[offset : offset + 32 + 8 + 8 + 4 + 8 + 8 + 8]
    if len(message) < 76:
        raise PythAccountError("truncated PriceUpdateV2 account")
    feed_id = message[:32]
    price, conf, expo, publish_time, _prev, ema = struct.unpack_from("<qQiqqq", message, 32)
    return PythPrice(feed_id, level == 1, price, conf, expo, publish_time, ema)
