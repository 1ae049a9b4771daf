"""What every job shares: the RPC pool, the sender, metrics, the keeper's keypair."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from solders.keypair import Keypair

from perpool_keeper.config import KeeperConfig
from perpool_keeper.metrics import Metrics
from perpool_keeper.rpc import RpcPool
from perpool_keeper.sender import TxResult, TxSender


@dataclass
class Context:
    config: KeeperConfig
    payer: Keypair
    rpc: RpcPool
    sender: TxSender
    metrics: Metrics
    kick: Callable[[str], None] = field(default=lambda _name: None)
    """Asks for an immediate run of another job (the liquidation job after a price post)."""

    @property
    def pools(self) -> list[str]:
        return self.config.keeper.pools


class Job(Protocol):
    name: str
    interval_sec: float

    async def tick(self) -> dict[str, Any]:
        """One run; returns a JSON-able summary. Must not raise for a single bad target."""
        ...


def tx_summary(result: TxResult) -> dict[str, Any]:
    out: dict[str, Any] = {"target": result.target, "status": result.status}
    if result.signature:
        out["signature"] = result.signature
    if result.error:
        out["error"] = result.error
    return out
