"""The keeper: jobs on an APScheduler (3.x, asyncio) schedule, the HTTP endpoints, draining
shutdown, and the ``--once`` mode.

APScheduler runs each job with ``max_instances=1`` and ``coalesce``; missed and skipped runs
are counted. A tick that raises is logged and counted, and the job keeps its schedule. A kick
(the oracle job after a post) runs the liquidation job at once, or right after its current
tick when one is running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from solders.keypair import Keypair

from perpool.config import load_keypair
from perpool_keeper.config import KeeperConfig
from perpool_keeper.http import HttpServer
from perpool_keeper.jobs.accrual import AccrualJob
from perpool_keeper.jobs.aum import AumJob
from perpool_keeper.jobs.base import Context, Job
from perpool_keeper.jobs.liquidation import LiquidationJob
from perpool_keeper.jobs.oracle import OracleJob
from perpool_keeper.logs import log
from perpool_keeper.metrics import Metrics
from perpool_keeper.rpc import RpcPool
from perpool_keeper.sender import TxSender

logger = logging.getLogger("perpool_keeper")

ORDER = ("oracle", "accrual", "liquidation", "aum")
"""``--once`` runs the jobs in this order (prices first, liquidations on fresh prices)."""


class Keeper:
    def __init__(self, config: KeeperConfig, payer: Keypair | None = None) -> None:
        self.config = config
        self.payer = payer or load_keypair(Path(config.keeper.keypair).expanduser())
        self.metrics = Metrics()
        self.rpc = RpcPool(config.rpc, self.payer, self.metrics)
        self.sender = TxSender(
            self.rpc, self.payer, config.tx, self.metrics, dry_run=config.keeper.dry_run
        )
        self.ctx = Context(config, self.payer, self.rpc, self.sender, self.metrics, self.kick)
        self.jobs: dict[str, Job] = {}
        jobs = config.jobs
        self.oracle: OracleJob | None = None
        if jobs.oracle.enabled and jobs.oracle.feeds:
            authority = (
                load_keypair(Path(jobs.oracle.authority_keypair).expanduser())
                if jobs.oracle.authority_keypair
                else self.payer
            )
            self.oracle = OracleJob(self.ctx, jobs.oracle, authority)
            self.jobs["oracle"] = self.oracle
        if jobs.accrual.enabled:
            self.jobs["accrual"] = AccrualJob(self.ctx, jobs.accrual)
        if jobs.liquidation.enabled:
            self.jobs["liquidation"] = LiquidationJob(self.ctx, jobs.liquidation, self.oracle)
        if jobs.aum.enabled:
            self.jobs["aum"] = AumJob(self.ctx, jobs.aum)
        self.started = time.monotonic()
        self.last_tick: dict[str, float] = {}
        self.last_slot: tuple[int, float] | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.http: HttpServer | None = None
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._rerun: set[str] = set()
        self._stopping = False

    # ---- one tick of one job --------------------------------------------------------------

    async def run_job(self, name: str) -> dict[str, Any]:
        job = self.jobs[name]
        started = time.perf_counter()
        try:
            summary = await job.tick()
            outcome = "ok"
        except Exception as exc:
            log(
                logger,
                logging.ERROR,
                "job tick failed",
                job=name,
                error=f"{type(exc).__name__}: {exc}",
            )
            summary, outcome = {"error": f"{type(exc).__name__}: {exc}"}, "error"
        self.metrics.job_ticks.labels(job=name, outcome=outcome).inc()
        self.metrics.job_tick_seconds.labels(job=name).observe(time.perf_counter() - started)
        self.metrics.job_last_tick.labels(job=name).set(time.time())
        self.last_tick[name] = time.monotonic()
        return summary

    async def _scheduled(self, name: str) -> None:
        if self._stopping:
            return
        task = asyncio.current_task()
        assert task is not None
        self._running[name] = task
        try:
            while True:
                await self.run_job(name)
                if name not in self._rerun or self._stopping:
                    break
                self._rerun.discard(name)
        finally:
            self._running.pop(name, None)

    def kick(self, name: str) -> None:
        if name not in self.jobs or self.scheduler is None or self._stopping:
            return
        if name in self._running:
            self._rerun.add(name)
            return
        job = self.scheduler.get_job(name)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    # ---- health ---------------------------------------------------------------------------

    async def watch_slot(self) -> None:
        try:
            slot = (await self.rpc.call(lambda c: c.connection.get_slot(), "getSlot")).value
        except Exception as exc:
            log(logger, logging.WARNING, "slot unavailable", error=str(exc))
            return
        self.metrics.chain_slot.set(slot)
        if self.last_slot is None or slot != self.last_slot[0]:
            self.last_slot = (slot, time.monotonic())

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        jobs: dict[str, Any] = {}
        healthy = True
        for name, job in self.jobs.items():
            last = self.last_tick.get(name)
            age = now - (last if last is not None else self.started)
            ok = age <= 3 * job.interval_sec
            healthy = healthy and ok
            jobs[name] = {
                "ok": ok,
                "last_tick_age_sec": None if last is None else round(age, 3),
                "interval_sec": job.interval_sec,
            }
        slot_ok = False
        slot_info: dict[str, Any] = {"slot": None}
        if self.last_slot is not None:
            slot_age = now - self.last_slot[1]
            slot_ok = slot_age <= self.config.health.slot_stall_sec
            slot_info = {"slot": self.last_slot[0], "advanced_sec_ago": round(slot_age, 3)}
        stale = self.oracle.stale_feeds if self.oracle is not None else []
        healthy = healthy and slot_ok and not stale
        self.metrics.healthy.set(1 if healthy else 0)
        return {
            "healthy": healthy,
            "jobs": jobs,
            "chain": {"ok": slot_ok, **slot_info},
            "stale_feeds": stale,
            "dry_run": self.config.keeper.dry_run,
        }

    # ---- modes ----------------------------------------------------------------------------

    async def run_once(self) -> dict[str, Any]:
        """Every enabled job once, in :data:`ORDER`; the summary of each."""
        try:
            await self.watch_slot()
            out: dict[str, Any] = {"dry_run": self.config.keeper.dry_run, "jobs": {}}
            for name in ORDER:
                if name in self.jobs:
                    out["jobs"][name] = await self.run_job(name)
            out["ok"] = not any(_has_error(s) for s in out["jobs"].values())
            return out
        finally:
            await self.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until ``stop`` is set, then drains: no new ticks, running ticks finish (up to
        ``drain_timeout_sec``), then exits."""
        if self.config.http.enabled:
            self.http = HttpServer(
                self.config.http.host, self.config.http.port, self.metrics.render, self.health
            )
            await self.http.start()
            log(
                logger,
                logging.INFO,
                "http listening",
                host=self.config.http.host,
                port=self.http.port,
            )
        scheduler = self.scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_listener(
            self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
        )
        now = datetime.now(UTC)
        for name, job in self.jobs.items():
            scheduler.add_job(
                self._scheduled,
                "interval",
                seconds=job.interval_sec,
                args=[name],
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(job.interval_sec)),
                next_run_time=now,
            )
        scheduler.add_job(
            self.watch_slot,
            "interval",
            seconds=self.config.health.interval_sec,
            id="_slot",
            max_instances=1,
            coalesce=True,
            next_run_time=now,
        )
        scheduler.start()
        log(
            logger,
            logging.INFO,
            "keeper started",
            jobs=list(self.jobs),
            pools=self.config.keeper.pools,
            dry_run=self.config.keeper.dry_run,
            payer=str(self.payer.pubkey()),
        )
        await stop.wait()
        log(logger, logging.INFO, "draining", running=list(self._running))
        self._stopping = True
        scheduler.pause()
        running = list(self._running.values())
        if running:
            _done, pending = await asyncio.wait(
                running, timeout=self.config.keeper.drain_timeout_sec
            )
            if pending:
                log(logger, logging.WARNING, "drain timed out", pending=len(pending))
        scheduler.shutdown(wait=False)
        await self.close()
        log(logger, logging.INFO, "keeper stopped")

    def _on_event(self, event: JobExecutionEvent) -> None:
        name = event.job_id
        if event.code == EVENT_JOB_MISSED:
            self.metrics.scheduler_missed.labels(job=name).inc()
            log(logger, logging.WARNING, "scheduler missed a run", job=name)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.metrics.scheduler_skipped.labels(job=name).inc()
            log(logger, logging.INFO, "run skipped: previous still running", job=name)
        elif event.code == EVENT_JOB_ERROR:
            log(logger, logging.ERROR, "job raised", job=name, error=str(event.exception))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self.oracle is not None:
            await self.oracle.close()
        await self.rpc.close()


def _has_error(summary: Any) -> bool:
    """A job summary reports a failure: the tick raised, or a target's status is ``error``."""
    if isinstance(summary, dict):
        if "error" in summary and "status" not in summary:
            return True
        if summary.get("status") == "error":
            return True
        return any(_has_error(v) for v in summary.values())
    if isinstance(summary, list):
        return any(_has_error(v) for v in summary)
    return False
