"""The demo's timeline on a running localnet: set up the pool, fund everyone, add the first
liquidity, start the keeper on the price path, then step by step move the chain clock, wait for
the keeper's prices, let the participants act and sample the chain; at the end stop the keeper,
check the outcome and write the report.

Steps follow the keeper: it replays one CSV row per ``step_seconds`` of wall time, and a step
begins once the leader feed's price of that step is on chain. Before each step the chain clock
jumps by ``step_minutes``, so borrow fees and funding accrue over simulated hours.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from pathlib import Path
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair

from perpool import pda
from perpool.client import PerpoolClient
from perpool.demo import actors as actors_mod
from perpool.demo.keeper import KeeperProcess, log_events, metric_total, write_config
from perpool.demo.options import DemoOptions
from perpool.demo.pricepath import EXPO, LEADER, PricePath, generate
from perpool.demo.report import Report, write_outputs
from perpool.demo.sampling import LiquidationScanner, conservation, sample
from perpool.exchange import Exchange, fetch_decoded
from perpool.faucet import is_localnet
from perpool.localnet import LocalnetRpc, airdrop
from perpool.pool_setup import setup_pool
from perpool.spec import load_spec

LAMPORTS_PER_SOL = 1_000_000_000
KEEPER_LAMPORTS = 100 * LAMPORTS_PER_SOL
SETTLE_TIMEOUT_SEC = 15.0


class DemoError(RuntimeError):
    """The demo cannot go on (the message says why)."""


def shipped_spec() -> Path:
    return Path(str(resources.files("perpool") / "specs" / "localnet.toml"))


def say(text: str) -> None:
    print(text, flush=True)


def dollars(usd: int) -> str:
    return f"${usd // 10**6:,}"


async def run_demo(url: str, opts: DemoOptions) -> int:
    """Runs the whole demo against a fresh localnet at ``url``; returns the exit code (1 when
    a check failed)."""
    admin = Keypair()
    client = PerpoolClient.connect(url, admin)
    try:
        return await _run(url, client, opts)
    finally:
        await client.close()


async def _run(url: str, client: PerpoolClient, opts: DemoOptions) -> int:
    wall_start = time.monotonic()
    if not await is_localnet(url):
        raise DemoError(f"{url} is not a perpool localnet (the demo needs its clock control)")
    if await fetch_decoded(client, "Perpool", pda.perpool()) is not None:
        raise DemoError("this localnet is already initialized; run the demo on a fresh one")
    spec = load_spec(shipped_spec())
    say(f"setting up pool {spec.pool_name!r} from {spec.path.name}: {', '.join(spec.symbols)}")
    steps = await setup_pool(client, spec, localnet=True)
    say(f"  {sum(s.status == 'created' for s in steps)} setup steps created")
    ex = await Exchange.load(client, spec)
    path = generate(opts.steps, opts.seed, opts.drop_pct, opts.step_minutes)
    plan = actors_mod.build_plan(path, opts.traders, {t.symbol: t for t in ex.tokens})
    lps = [a for a in plan.actors.values() if a.role == "lp"]
    traders = [a for a in plan.actors.values() if a.role == "trader"]
    say(
        f"price path: {path.steps} steps over {path.hours(path.steps - 1):.1f} simulated hours "
        f"({opts.step_minutes} min, {path.minutes[path.drop_start]} min in the drop; "
        f"{opts.step_seconds:g} s of wall time each); SOL -{path.drop_pct}% from step "
        f"{path.drop_start} to {path.drop_end}"
    )
    say(
        f"funding {len(lps)} liquidity providers and {len(traders)} traders "
        f"({len(plan.timeline)} planned actions)"
    )
    await actors_mod.fund_actors(ex, url, list(plan.actors.values()))
    # One after the other: each deposit's fee depends on the pool the earlier ones left.
    records = await actors_mod.perform_all(ex, plan.actors, plan.setup, concurrency=1)
    for record in records:
        say(f"  {record['actor']}: {record['label']}: {record['status']}")
    if any(r["status"] != "ok" for r in records):
        raise DemoError("the first liquidity deposits failed")

    keeper = Keypair()
    await airdrop(client.connection, keeper.pubkey(), KEEPER_LAMPORTS)
    setup = write_config(
        opts.out / "keeper",
        url=url,
        ex=ex,
        path=path,
        keeper=keeper,
        oracle_authority=client.payer,
        step_seconds=opts.step_seconds,
        shortest_jump_sec=min(path.minutes[1:]) * 60,
    )
    say(f"starting perpool-keeper ({setup.config}, log {setup.log.name})")
    process = KeeperProcess(setup)
    scanner = LiquidationScanner(ex, keeper.pubkey())
    points: list[dict[str, Any]] = []
    metrics: dict[str, float] = {}
    try:
        async with LocalnetRpc(url) as rpc:
            await _timeline(ex, rpc, opts, path, plan, process, scanner, points, records)
        metrics = await _settle(process)
    finally:
        code = process.stop()
    say(f"keeper stopped (exit {code})")
    points.append(await sample(ex, scanner, path.steps - 1))
    checks = await _checks(ex, scanner, metrics, process)
    report = Report(
        options=opts,
        url=url,
        path=path,
        plan=plan,
        points=points,
        liquidations=[x.to_json() for x in scanner.found],
        actions=records,
        keeper={
            "pubkey": str(keeper.pubkey()),
            "config": str(setup.config),
            "log": str(setup.log),
            "exitCode": code,
            "metrics": metrics,
        },
        checks=checks,
        wall_seconds=time.monotonic() - wall_start,
    )
    summary = write_outputs(report, opts.out)
    say("")
    say(summary)
    return 0 if checks["ok"] else 1


async def _advance(rpc: LocalnetRpc, seconds: int) -> None:
    """Moves the chain clock and waits until confirmed reads (what quotes simulate against)
    see it."""
    target = (await rpc.advance_clock(seconds)).unix_timestamp
    deadline = time.monotonic() + 10
    while (await rpc.get_clock("confirmed")).unix_timestamp < target:
        if time.monotonic() > deadline:
            raise DemoError("the confirmed clock did not reach the advanced time")
        await asyncio.sleep(0.02)


async def _current_step(ex: Exchange, path: PricePath) -> int | None:
    oracle = await fetch_decoded(ex.client, "CustomOracle", ex.token(LEADER).oracle)
    if oracle is None or oracle.expo != EXPO:
        return None
    return path.step_of(int(oracle.price))


async def _wait_step(
    ex: Exchange, path: PricePath, step: int, process: KeeperProcess, timeout: float
) -> int:
    """Waits until the keeper has posted the prices of ``step`` (or a later one); returns the
    step on chain."""
    deadline = time.monotonic() + timeout
    while True:
        current = await _current_step(ex, path)
        if current is not None and current >= step:
            return current
        if not process.alive():
            raise DemoError(f"perpool-keeper exited:\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise DemoError(
                f"the keeper did not post the prices of step {step} within {timeout:.0f}s:\n"
                f"{process.log_tail()}"
            )
        await asyncio.sleep(0.1)


async def _timeline(
    ex: Exchange,
    rpc: LocalnetRpc,
    opts: DemoOptions,
    path: PricePath,
    plan: actors_mod.Plan,
    process: KeeperProcess,
    scanner: LiquidationScanner,
    points: list[dict[str, Any]],
    records: list[dict[str, Any]],
) -> None:
    """Every step: jump the clock, wait for the keeper's prices, act, give the keeper part of
    the step to liquidate at these prices, sample. The last step is sampled after the keeper
    stopped (by the caller)."""
    done = 0
    step = 0
    timeout = 3 * opts.step_seconds + 30
    settle = min(1.5, opts.step_seconds / 2)
    while step < path.steps:
        if step > 0:
            await _advance(rpc, path.minutes[step] * 60)
        current = await _wait_step(ex, path, step, process, timeout)
        seen = time.monotonic()
        if current > step:
            say(f"    (behind the keeper: steps {step}..{current} taken as one)")
        due = [a for a in plan.timeline if done < a.step <= current]
        done = current
        results = await actors_mod.perform_all(ex, plan.actors, due)
        records += results
        for record in results:
            if record["status"] != "ok":
                say(
                    f"    {record['actor']}: {record['label']}: {record['status']} "
                    f"({record.get('error')})"
                )
        if current < path.steps - 1:
            await asyncio.sleep(max(0.0, seen + settle - time.monotonic()))
            point = await sample(ex, scanner, current)
            points.append(point)
            _progress(path, point, results, points[0]["chainTime"])
        step = current + 1


def _progress(
    path: PricePath, point: dict[str, Any], results: list[dict[str, Any]], t0: int
) -> None:
    hours = (point["chainTime"] - t0) / 3600
    prices = "  ".join(
        f"{s} {point['custodies'][s]['price'] * 10.0 ** point['custodies'][s]['expo']:,.2f}"
        for s in ("SOL", "ETH", "WBTC")
    )
    ok = sum(r["status"] == "ok" for r in results)
    say(
        f"step {point['step']:>3}/{path.steps - 1}  +{hours:5.1f}h  {prices}  "
        f"AUM {dollars(point['aumUsd'])}  LP ${point['lpPriceUsd'] / 10**6:.4f}  "
        f"OI {dollars(point['longOiUsd'])} long / {dollars(point['shortOiUsd'])} short  "
        f"liquidations {point['liquidations']}  actions {ok}/{len(results)}"
    )


async def _settle(process: KeeperProcess) -> dict[str, float]:
    """After the last step: waits until the keeper's liquidation job reports nothing left to
    liquidate and its liquidation count holds still; returns its metrics."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SEC
    previous: float | None = None
    metrics: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            metrics = await process.metrics()
        except Exception:
            await asyncio.sleep(0.5)
            continue
        total = metric_total(metrics, "perpool_keeper_liquidations_total")
        idle = metrics.get("perpool_keeper_positions_liquidatable", 0.0) == 0.0
        if idle and total == previous:
            break
        previous = total
        await asyncio.sleep(1.5)
    return metrics


async def _checks(
    ex: Exchange, scanner: LiquidationScanner, metrics: dict[str, float], process: KeeperProcess
) -> dict[str, Any]:
    found = scanner.found
    keeper_count = int(metric_total(metrics, "perpool_keeper_liquidations_total"))
    logged = len(log_events(process.setup.log, "position liquidated"))
    tokens = await conservation(ex)
    custodies = await ex.client.program.account["Custody"].fetch_multiple(
        [t.custody for t in ex.tokens], commitment=Confirmed
    )
    stats_volume = sum(c.stats.volume_liquidation_usd for c in custodies if c is not None)
    event_volume = sum(x.size_usd for x in found)
    checks: dict[str, Any] = {
        "liquidations": len(found),
        "liquidationsHappened": len(found) > 0,
        "keeperLiquidations": keeper_count,
        "keeperLogged": logged,
        "keeperMatchesChain": keeper_count == len(found) == logged,
        "liquidationVolumeUsd": event_volume,
        "liquidationVolumeStatsUsd": stats_volume,
        "volumeMatchesStats": event_volume == stats_volume,
        "conservation": tokens,
        "conserved": all(v["ok"] for v in tokens.values()),
    }
    checks["ok"] = bool(
        checks["liquidationsHappened"]
        and checks["keeperMatchesChain"]
        and checks["volumeMatchesStats"]
        and checks["conserved"]
    )
    return checks
