"""Prometheus metrics of the keeper (one registry per keeper instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PREFIX = "perpool_keeper"


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        p = PREFIX
        self.job_ticks = Counter(
            f"{p}_job_ticks", "Job ticks by outcome", ["job", "outcome"], registry=r
        )
        self.job_tick_seconds = Histogram(
            f"{p}_job_tick_seconds", "Duration of a job tick", ["job"], registry=r
        )
        self.job_last_tick = Gauge(
            f"{p}_job_last_tick_timestamp_seconds",
            "Unix time of the job's last completed tick",
            ["job"],
            registry=r,
        )
        self.scheduler_missed = Counter(
            f"{p}_scheduler_missed_runs", "Runs APScheduler missed", ["job"], registry=r
        )
        self.scheduler_skipped = Counter(
            f"{p}_scheduler_skipped_runs",
            "Runs skipped because the previous one was still running",
            ["job"],
            registry=r,
        )
        self.tx_sent = Counter(f"{p}_tx_sent", "Transactions sent", ["kind"], registry=r)
        self.tx_landed = Counter(f"{p}_tx_landed", "Transactions landed", ["kind"], registry=r)
        self.tx_failed = Counter(
            f"{p}_tx_failed",
            "Transactions that failed, by stage (reason) and program error",
            ["kind", "reason", "error"],
            registry=r,
        )
        self.tx_simulated = Counter(
            f"{p}_tx_simulated", "Transactions only simulated (dry run)", ["kind"], registry=r
        )
        self.tx_rebroadcasts = Counter(
            f"{p}_tx_rebroadcasts", "Re-sends of the same signed bytes", registry=r
        )
        self.tx_rebuilds = Counter(
            f"{p}_tx_rebuilds", "Transactions rebuilt after their blockhash expired", registry=r
        )
        self.tx_inflight_skips = Counter(
            f"{p}_tx_inflight_skips",
            "Sends skipped because a transaction for the same target was in flight",
            ["kind"],
            registry=r,
        )
        self.priority_fee = Gauge(
            f"{p}_priority_fee_micro_lamports", "Priority fee of the last transaction", registry=r
        )
        self.liquidations = Counter(
            f"{p}_liquidations", "Liquidations landed", ["side"], registry=r
        )
        self.liquidation_lag_slots = Histogram(
            f"{p}_liquidation_lag_slots",
            "Slots from seeing a position liquidatable to the liquidation landing",
            buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89),
            registry=r,
        )
        self.liquidation_lag_seconds = Histogram(
            f"{p}_liquidation_lag_seconds",
            "Seconds from seeing a position liquidatable to the liquidation landing",
            registry=r,
        )
        self.positions = Gauge(f"{p}_positions", "Open positions seen", registry=r)
        self.positions_liquidatable = Gauge(
            f"{p}_positions_liquidatable", "Liquidatable positions at the last tick", registry=r
        )
        self.evaluation_seconds = Histogram(
            f"{p}_evaluation_seconds", "Time to evaluate every position", registry=r
        )
        self.bad_accounts = Counter(
            f"{p}_bad_accounts", "Accounts that could not be decoded or evaluated", registry=r
        )
        self.oracle_posts = Counter(f"{p}_oracle_posts", "Prices posted", ["feed"], registry=r)
        self.oracle_age = Gauge(
            f"{p}_oracle_age_seconds",
            "Age of the on-chain price (chain clock)",
            ["feed"],
            registry=r,
        )
        self.oracle_source_stale = Gauge(
            f"{p}_oracle_source_stale", "1 while the feed's source is stale", ["feed"], registry=r
        )
        self.oracle_source_errors = Counter(
            f"{p}_oracle_source_errors", "Price source failures", ["feed"], registry=r
        )
        self.rpc_errors = Counter(f"{p}_rpc_errors", "RPC failures", ["url", "kind"], registry=r)
        self.rpc_failovers = Counter(
            f"{p}_rpc_failovers", "Switches to another RPC URL", registry=r
        )
        self.chain_slot = Gauge(f"{p}_chain_slot", "Last chain slot seen", registry=r)
        self.healthy = Gauge(f"{p}_healthy", "1 when /health reports healthy", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
