"""What a high-level operation returns: human fields plus the transaction's outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perpool.txn import TxOutcome


@dataclass
class ActionResult:
    """``fields`` are JSON-ready (amounts as decimal strings in human units, keys carrying the
    unit: ``...Usd``, ``...Bps``); ``outcome`` is None for quotes."""

    fields: dict[str, Any] = field(default_factory=dict)
    outcome: TxOutcome | None = None

    def to_json(self) -> dict[str, Any]:
        out = dict(self.fields)
        if self.outcome is not None:
            out |= self.outcome.to_json()
        return out
