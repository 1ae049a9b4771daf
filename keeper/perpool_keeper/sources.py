"""Price sources of the oracle job, one per feed: a seeded synthetic random walk, a CSV replay,
Pyth Hermes over HTTP and an on-chain Pyth ``PriceUpdateV2`` account.

A source returns a :class:`Quote`. ``observed_at`` is the wall time the data is from; the
oracle job refuses a quote older than the feed's ``max_source_age_sec`` (the source is stale)
and never posts a ``publish_time`` ahead of the chain clock.
"""

from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx
from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from perpool_keeper.config import FeedConfig
from perpool_keeper.pyth import parse_price_update
from perpool_keeper.rpc import RpcPool


class SourceError(RuntimeError):
    """The source could not produce a price."""


@dataclass(frozen=True)
class Quote:
    price: int
    expo: int
    conf: int
    ema: int
    observed_at: float
    """Wall-clock unix time of the data."""
    publish_time: int | None = None
    """The upstream publish time to post; None = the chain clock at posting time."""


class PriceSource(Protocol):
    async def fetch(self) -> Quote: ...


def _scaled(value: float | Decimal, expo: int) -> int:
    return int(Decimal(str(value)).scaleb(-expo).to_integral_value())


def _conf(price: int, conf_bps: float) -> int:
    return int(price * conf_bps // 10_000)


class SyntheticSource:
    """Geometric random walk, deterministic for a seed: step ``i`` is the same on every run."""

    def __init__(self, feed: FeedConfig, clock: Any = time.time) -> None:
        self.rng = random.Random(feed.seed)
        self.price = feed.start_price
        self.expo = feed.expo
        self.sigma = feed.volatility_bps / 10_000
        self.conf_bps = feed.conf_bps
        self.clock = clock
        self.steps = 0

    def step(self) -> float:
        if self.steps:
            self.price *= math.exp(self.rng.gauss(0.0, self.sigma))
        self.steps += 1
        return self.price

    async def fetch(self) -> Quote:
        price = _scaled(self.step(), self.expo)
        return Quote(price, self.expo, _conf(price, self.conf_bps), price, self.clock())


class CsvSource:
    """Replays ``t,price[,conf[,ema]]`` rows (``t`` in seconds from the start of the replay,
    prices in human units): the row in effect is the last with ``t <= elapsed``. After the last
    row the source ages and turns stale, like a feed that stopped."""

    def __init__(self, feed: FeedConfig, clock: Any = time.time) -> None:
        self.rows: list[tuple[float, Decimal, Decimal | None, Decimal | None]] = []
        with Path(feed.path).expanduser().open(newline="") as fh:
            for row in csv.reader(fh):
                if not row or row[0].strip().startswith("#") or row[0].strip() == "t":
                    continue
                t = float(row[0])
                price = Decimal(row[1])
                conf = Decimal(row[2]) if len(row) > 2 and row[2].strip() else None
                ema = Decimal(row[3]) if len(row) > 3 and row[3].strip() else None
                self.rows.append((t, price, conf, ema))
        if not self.rows:
            raise SourceError(f"{feed.path}: no price rows")
        self.rows.sort(key=lambda r: r[0])
        self.expo = feed.expo
        self.conf_bps = feed.conf_bps
        self.clock = clock
        self.started = clock()

    async def fetch(self) -> Quote:
        elapsed = self.clock() - self.started
        current = None
        for row in self.rows:
            if row[0] > elapsed:
                break
            current = row
        if current is None:
            raise SourceError("the replay has not reached its first row yet")
        t, price_text, conf_text, ema_text = current
        price = _scaled(price_text, self.expo)
        conf = (
            _scaled(conf_text, self.expo) if conf_text is not None else _conf(price, self.conf_bps)
        )
        ema = _scaled(ema_text, self.expo) if ema_text is not None else price
        return Quote(price, self.expo, conf, ema, self.started + t)


class HermesSource:
    """``GET {url}/v2/updates/price/latest?ids[]=<feed>&parsed=true`` (Pyth Hermes)."""

    def __init__(self, feed: FeedConfig, http: httpx.AsyncClient) -> None:
        self.url = feed.url.rstrip("/")
        self.feed_id = feed.feed_id.lower().removeprefix("0x")
        self.http = http

    async def fetch(self) -> Quote:
        try:
            resp = await self.http.get(
                f"{self.url}/v2/updates/price/latest",
                params={"ids[]": self.feed_id, "parsed": "true"},
            )
            resp.raise_for_status()
            parsed = resp.json()["parsed"]
            entry = next(p for p in parsed if p["id"].lower().removeprefix("0x") == self.feed_id)
            price, ema = entry["price"], entry["ema_price"]
            publish_time = int(price["publish_time"])
            value, ema_value = int(price["price"]), int(ema["price"])
            if value <= 0 or ema_value <= 0:
                raise SourceError(f"non-positive price from Hermes: {value}")
            if int(ema["expo"]) != int(price["expo"]):
                raise SourceError("Hermes price and EMA exponents differ")
            return Quote(
                value, int(price["expo"]), int(price["conf"]), ema_value, publish_time, publish_time
            )
        except SourceError:
            raise
        except (httpx.HTTPError, KeyError, ValueError, StopIteration, TypeError) as exc:
            raise SourceError(f"Hermes: {type(exc).__name__}: {exc}") from exc


class PythAccountSource:
    """An on-chain Pyth pull-oracle ``PriceUpdateV2`` account (fully verified updates only)."""

    def __init__(self, feed: FeedConfig, rpc: RpcPool) -> None:
        self.address = Pubkey.from_string(feed.address)
        self.rpc = rpc

    async def fetch(self) -> Quote:
        info = (
            await self.rpc.call(
                lambda c: c.connection.get_account_info(self.address, Confirmed), "pyth account"
            )
        ).value
        if info is None:
            raise SourceError(f"Pyth account {self.address} does not exist")
        try:
            pyth = parse_price_update(bytes(info.data))
        except ValueError as exc:
            raise SourceError(str(exc)) from exc
        if not pyth.fully_verified:
            raise SourceError("the Pyth update is only partially verified")
        if pyth.price <= 0 or pyth.ema <= 0:
            raise SourceError(f"non-positive Pyth price: {pyth.price}")
        return Quote(
            pyth.price, pyth.expo, pyth.conf, pyth.ema, pyth.publish_time, pyth.publish_time
        )


def make_source(feed: FeedConfig, rpc: RpcPool, http: httpx.AsyncClient) -> PriceSource:
    if feed.source == "synthetic":
        return SyntheticSource(feed)
    if feed.source == "csv":
        return CsvSource(feed)
    if feed.source == "hermes":
        return HermesSource(feed, http)
    if feed.source == "pyth_account":
        return PythAccountSource(feed, rpc)
    raise SourceError(f"unknown source {feed.source!r}")
