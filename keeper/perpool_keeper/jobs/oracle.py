"""Oracle posting: for each feed, post the source's price to the pool's custom oracle when it
moved by ``deviation_bps`` or the on-chain price is ``heartbeat_sec`` old.

Never posts a stale quote (older than the feed's ``max_source_age_sec``: the feed is reported
stale in logs, metrics and ``/health`` and nothing is posted until it recovers), a publish time
ahead of the chain clock, or one not after the on-chain publish time. After a post the
liquidation job is asked to run at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import quotes as q
from perpool_keeper.chain import clock, multiple_accounts
from perpool_keeper.config import FeedConfig, OracleJobConfig
from perpool_keeper.jobs.base import Context, tx_summary
from perpool_keeper.logs import log
from perpool_keeper.sources import PriceSource, Quote, SourceError, make_source

logger = logging.getLogger("perpool_keeper.oracle")


@dataclass
class Feed:
    config: FeedConfig
    pool: str
    mint: Pubkey
    source: PriceSource
    label: str
    last_quote: Quote | None = None
    stale: bool = False


class OracleJob:
    name = "oracle"

    def __init__(self, ctx: Context, config: OracleJobConfig, authority: Keypair) -> None:
        self.ctx = ctx
        self.config = config
        self.interval_sec = config.interval_sec
        self.authority = authority
        self.http = httpx.AsyncClient(timeout=ctx.config.rpc.timeout_sec)
        self.feeds = [
            Feed(
                config=feed,
                pool=feed.pool,
                mint=Pubkey.from_string(feed.mint),
                source=make_source(feed, ctx.rpc, self.http),
                label=f"{feed.pool}:{feed.mint}",
            )
            for feed in config.feeds
        ]
        self.last_post_slot: dict[tuple[str, Pubkey], int] = {}

    @property
    def stale_feeds(self) -> list[str]:
        return [f.label for f in self.feeds if f.stale]

    async def close(self) -> None:
        await self.http.aclose()

    def fresh_quote(self, pool: str, mint: Pubkey) -> tuple[Feed, Quote] | None:
        """The latest non-stale quote of a feed (for bundling into a liquidation)."""
        for feed in self.feeds:
            quote = feed.last_quote
            if (
                feed.pool == pool
                and feed.mint == mint
                and quote is not None
                and not feed.stale
                and time.time() - quote.observed_at <= feed.config.max_source_age_sec
            ):
                return feed, quote
        return None

    def price_ix(self, feed: Feed, quote: Quote, publish_time: int) -> Instruction:
        return self.ctx.rpc.client.set_price_ix(
            feed.pool,
            feed.mint,
            self.authority.pubkey(),
            price=quote.price,
            expo=quote.expo,
            conf=quote.conf,
            ema=quote.ema,
            publish_time=publish_time,
        )

    async def tick(self) -> dict[str, Any]:
        results: list[dict[str, Any]] = []
        posted = False
        for feed in self.feeds:
            try:
                outcome = await self._tick_feed(feed)
            except Exception as exc:
                log(logger, logging.ERROR, "feed failed", feed=feed.label, error=str(exc))
                outcome = {"feed": feed.label, "status": "error", "error": str(exc)}
            posted = posted or outcome.get("status") == "landed"
            results.append(outcome)
        if posted:
            self.ctx.kick("liquidation")
        return {"feeds": results, "stale": self.stale_feeds}

    async def _tick_feed(self, feed: Feed) -> dict[str, Any]:
        metrics = self.ctx.metrics
        try:
            quote = await feed.source.fetch()
        except SourceError as exc:
            metrics.oracle_source_errors.labels(feed=feed.label).inc()
            self._set_stale(feed, True, str(exc))
            return {"feed": feed.label, "status": "source_error", "error": str(exc)}
        age = time.time() - quote.observed_at
        if age > feed.config.max_source_age_sec:
            self._set_stale(feed, True, f"source data is {age:.0f}s old")
            return {"feed": feed.label, "status": "source_stale", "age_sec": round(age, 1)}
        self._set_stale(feed, False, "")
        feed.last_quote = quote
        keys = self.ctx.rpc.client.custody_keys(feed.pool, feed.mint)
        now = await clock(self.ctx.rpc)
        (info,) = await multiple_accounts(self.ctx.rpc, [keys.oracle])
        onchain: q.CustomOracleState | None = None
        if info is not None:
            coder = self.ctx.rpc.client.program.coder.accounts
            onchain = q.CustomOracleState.from_account(coder.decode(bytes(info.data)))
            metrics.oracle_age.labels(feed=feed.label).set(
                now.unix_timestamp - onchain.publish_time
            )
        publish_time = quote.publish_time if quote.publish_time is not None else now.unix_timestamp
        if publish_time > now.unix_timestamp:
            return {"feed": feed.label, "status": "skipped", "reason": "publish time in the future"}
        if onchain is not None and publish_time <= onchain.publish_time:
            return {"feed": feed.label, "status": "skipped", "reason": "no newer price"}
        if onchain is not None and not self._should_post(feed, quote, onchain, now.unix_timestamp):
            return {"feed": feed.label, "status": "skipped", "reason": "within deviation"}

        async def build() -> list[Instruction]:
            return [self.price_ix(feed, quote, publish_time)]

        result = await self.ctx.sender.submit(
            "oracle", f"oracle:{keys.oracle}", build, [self.authority]
        )
        if result.status == "landed":
            metrics.oracle_posts.labels(feed=feed.label).inc()
            metrics.oracle_age.labels(feed=feed.label).set(0)
            if result.slot is not None:
                self.last_post_slot[(feed.pool, feed.mint)] = result.slot
            log(
                logger,
                logging.INFO,
                "price posted",
                feed=feed.label,
                price=quote.price,
                expo=quote.expo,
                publish_time=publish_time,
                slot=result.slot,
            )
        return {"feed": feed.label, **tx_summary(result), "price": quote.price}

    def _should_post(
        self, feed: Feed, quote: Quote, onchain: q.CustomOracleState, now: int
    ) -> bool:
        if now - onchain.publish_time >= self.config.heartbeat_sec:
            return True
        if onchain.expo != quote.expo or onchain.price == 0:
            return True
        moved = abs(quote.price - onchain.price) * 10_000 / onchain.price
        return moved >= self.config.deviation_bps

    def _set_stale(self, feed: Feed, stale: bool, why: str) -> None:
        if stale and not feed.stale:
            log(logger, logging.ERROR, "price source stale: not posting", feed=feed.label, why=why)
        elif feed.stale and not stale:
            log(logger, logging.INFO, "price source recovered", feed=feed.label)
        feed.stale = stale
        self.ctx.metrics.oracle_source_stale.labels(feed=feed.label).set(1 if stale else 0)
