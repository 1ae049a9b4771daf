"""An ordered list of RPC endpoints with failover, retries, backoff with jitter and 429 handling.

Each URL gets its own :class:`~perpool.client.PerpoolClient` (same payer). ``call(op)`` runs
``op(client)`` on the first URL that is not cooling down; a transport failure marks the URL down
for ``cooldown_sec`` and moves on to the next one; HTTP 429 backs off on the same URL. Errors
that come from the chain itself (a JSON-RPC error, a failed simulation) are not retried here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
from solders.keypair import Keypair

from perpool.client import PerpoolClient
from perpool_keeper.config import RpcConfig
from perpool_keeper.logs import log
from perpool_keeper.metrics import Metrics

T = TypeVar("T")
logger = logging.getLogger("perpool_keeper.rpc")


class RpcUnavailable(RuntimeError):
    """Every attempt on every URL failed."""


class RpcCallError(RuntimeError):
    """A JSON-RPC ``error`` object (the node answered; not an availability problem)."""

    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


def classify(exc: BaseException) -> str | None:
    """``"rate_limited"``, ``"transport"`` or None (not an RPC availability problem)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.HTTPStatusError):
            return "rate_limited" if current.response.status_code == 429 else "transport"
        if isinstance(current, httpx.TransportError | OSError | asyncio.TimeoutError):
            return "transport"
        current = current.__cause__ or current.__context__
    return None


class RpcPool:
    def __init__(
        self,
        config: RpcConfig,
        payer: Keypair,
        metrics: Metrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.urls = list(config.urls)
        self.clients = [
            PerpoolClient.connect(url, payer, timeout=config.timeout_sec) for url in self.urls
        ]
        self.metrics = metrics
        self._down_until = [0.0] * len(self.urls)
        self._sleep = sleep
        self.active = 0
        self._http = httpx.AsyncClient(timeout=config.timeout_sec)

    @property
    def client(self) -> PerpoolClient:
        """The client of the preferred URL right now (for building instructions)."""
        return self.clients[self._order()[0]]

    def _order(self) -> list[int]:
        now = time.monotonic()
        up = [i for i in range(len(self.urls)) if self._down_until[i] <= now]
        down = sorted(
            (i for i in range(len(self.urls)) if self._down_until[i] > now),
            key=lambda i: self._down_until[i],
        )
        return up + down

    def backoff(self, attempt: int) -> float:
        base = min(self.config.backoff_max_sec, self.config.backoff_base_sec * float(2**attempt))
        return float(base / 2 + random.uniform(0, base / 2))

    async def call(self, op: Callable[[PerpoolClient], Awaitable[T]], what: str = "rpc") -> T:
        last: BaseException | None = None
        for attempt in range(self.config.max_attempts):
            order = self._order()
            for index in order:
                try:
                    result = await op(self.clients[index])
                except Exception as exc:
                    kind = classify(exc)
                    if kind is None:
                        raise
                    last = exc
                    url = self.urls[index]
                    self.metrics.rpc_errors.labels(url=url, kind=kind).inc()
                    if kind == "rate_limited":
                        delay = self.backoff(attempt + 1)
                        log(logger, logging.WARNING, "rate limited", url=url, what=what)
                        await self._sleep(delay)
                        continue
                    self._down_until[index] = time.monotonic() + self.config.cooldown_sec
                    self.metrics.rpc_failovers.inc()
                    log(
                        logger,
                        logging.WARNING,
                        "rpc failed",
                        url=url,
                        what=what,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    continue
                if index != self.active:
                    log(logger, logging.INFO, "rpc now using", url=self.urls[index])
                    self.active = index
                return result
            await self._sleep(self.backoff(attempt))
        raise RpcUnavailable(f"{what}: every RPC URL failed ({last!r})")

    def url_of(self, client: PerpoolClient) -> str:
        return self.urls[self.clients.index(client)]

    async def raw(self, method: str, params: list[Any]) -> Any:
        """A JSON-RPC call solana-py has no method for; ``error`` objects raise RpcCallError."""

        async def op(client: PerpoolClient) -> Any:
            resp = await self._http.post(
                self.url_of(client),
                json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            )
            resp.raise_for_status()
            body = resp.json()
            if "error" in body:
                raise RpcCallError(method, body["error"])
            return body.get("result")

        return await self.call(op, method)

    async def close(self) -> None:
        await self._http.aclose()
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()
