"""perpool-keeper against a real localnet: liquidations (long and short, remainder to the
owner), healthy positions untouched, borrow accrual, --once / --dry-run, source staleness, RPC
failover and outage, a daemon process with /health and /metrics, SIGKILL and restart.

Prices use exponent -8 (one unit = $0.00000001). The positions are about 50x: $1000 of size
on $20 of collateral, so a 1.5% move against them crosses the 0.4% maintenance margin.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import start_validator
from http_stub import HttpStub
from pool_env import PoolEnv, TokenSpec, build_pool_env
from solders.keypair import Keypair
from solders.signature import Signature
from solders.transaction import Transaction
from spl.token.instructions import get_associated_token_address
from trade_support import (
    SOL,
    USD,
    USDC,
    Trader,
    account_exists,
    add_pool,
    assert_conserved,
    long_market,
    new_trader,
    open_position,
    position_key,
    provide_liquidity,
    set_prices,
    short_market,
)

from perpool.localnet import LocalnetProcess, airdrop, free_port
from perpool.trade import Market
from perpool_keeper.config import FeedConfig, KeeperConfig, load_config
from perpool_keeper.daemon import Keeper

pytestmark = pytest.mark.asyncio(loop_scope="module")

EXPO = -8
P100 = 100 * 10**8
TOKENS = (TokenSpec("SOL", 9, False, P100, EXPO), TokenSpec("USDC", 6, True, 1_000_000, -6))
FEES = {
    "open_position_bps": 10,
    "close_position_bps": 10,
    "liquidation_reward_bps": 10,
    "protocol_share_bps": 2_500,
}


@pytest.fixture(scope="module")
def net() -> Iterator[LocalnetProcess]:
    process = start_validator()
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet(), TOKENS)
    for symbol in pool_env.specs:
        await pool_env.configure(symbol, **FEES)
    await provide_liquidity(pool_env, "SOL", 100 * SOL)
    await provide_liquidity(pool_env, "USDC", 10_000 * USDC)
    yield pool_env
    await pool_env.client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def keeper_wallet(env: PoolEnv) -> Keypair:
    return await env.new_wallet(100)


def write_keypair(path: Path, keypair: Keypair) -> Path:
    path.write_text(json.dumps(list(bytes(keypair))))
    return path


def keeper_config(env: PoolEnv, tmp_path: Path, payer: Keypair, **jobs: bool) -> KeeperConfig:
    """Accrual, liquidation and AUM by default; ``oracle=True`` adds nothing by itself (feeds
    are set by the test)."""
    config = load_config(
        None,
        {
            "PERPOOL_KEEPER__RPC__URLS": env.url,
            "PERPOOL_KEEPER__RPC__BACKOFF_BASE_SEC": "0.05",
            "PERPOOL_KEEPER__RPC__MAX_ATTEMPTS": "2",
            "PERPOOL_KEEPER__KEEPER__KEYPAIR": str(write_keypair(tmp_path / "k.json", payer)),
            "PERPOOL_KEEPER__HTTP__ENABLED": "false",
        },
    )
    config.keeper.pools = [env.pool]
    for name, enabled in jobs.items():
        getattr(config.jobs, name).enabled = enabled
    return config


async def run_once(config: KeeperConfig, payer: Keypair) -> dict[str, Any]:
    return await Keeper(config, payer).run_once()


async def open_50x(env: PoolEnv, market: Market, usdc: int = 100 * USDC) -> Trader:
    """$1000 of size on $20 of collateral (net $19 after the 0.1% open fee): a 1.5% move
    against it leaves $19 - $15 - $1 close fee < 0.4% of $1000."""
    if market.side == "long":
        trader = await new_trader(env, SOL=1 * SOL)
        await open_position(env, trader, market, collateral=SOL // 5, size_usd=1_000 * USD)
    else:
        trader = await new_trader(env, USDC=usdc)
        await open_position(env, trader, market, collateral=20 * USDC, size_usd=1_000 * USD)
    return trader


async def resync(env: PoolEnv) -> None:
    """The keeper posted prices too: the next test posts after the chain's publish times."""
    for symbol in env.specs:
        keys = env.client.custody_keys(env.pool, env.mint(symbol))
        oracle = await env.client.fetch("CustomOracle", keys.oracle)
        env.last_publish[symbol] = max(env.last_publish.get(symbol, 0), oracle.publish_time)


def liquidations(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return list(summary["jobs"]["liquidation"]["results"])


async def test_long_and_short_closed_with_remainder_to_owner_healthy_untouched(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    long_trader = await open_50x(env, long_market(env))
    short_trader = await open_50x(env, short_market(env))
    healthy = await new_trader(env, SOL=2 * SOL)
    await open_position(env, healthy, long_market(env), collateral=SOL, size_usd=150 * USD)
    config = keeper_config(env, tmp_path, keeper_wallet, oracle=False)

    summary = await run_once(config, keeper_wallet)
    assert summary["ok"], summary
    assert liquidations(summary) == []
    assert summary["jobs"]["liquidation"]["positions"] == 3

    # SOL -1.5%: the long's margin ($19 - $15 loss - $1 close fee) is under 0.4% of $1000.
    await set_prices(env, SOL=P100 * 985 // 1000)
    sol_before = await env.balance(long_trader.accounts["SOL"])
    summary = await run_once(config, keeper_wallet)
    (done,) = liquidations(summary)
    assert done["status"] == "landed", done
    assert done["side"] == "long"
    assert done["target"] == str(position_key(env, long_market(env), long_trader.key))
    assert not await account_exists(env, position_key(env, long_market(env), long_trader.key))
    assert await env.balance(long_trader.accounts["SOL"]) > sol_before
    # The keeper's reward arrived in its own (created) SOL account.
    reward_account = get_associated_token_address(keeper_wallet.pubkey(), env.mint("SOL"))
    assert await env.balance(reward_account) > 0
    assert await account_exists(env, position_key(env, short_market(env), short_trader.key))
    assert await account_exists(env, position_key(env, long_market(env), healthy.key))

    # SOL +1.5% over entry: now the short is under water.
    await set_prices(env, SOL=P100 * 1015 // 1000)
    usdc_before = await env.balance(short_trader.accounts["USDC"])
    summary = await run_once(config, keeper_wallet)
    (done,) = liquidations(summary)
    assert (done["status"], done["side"]) == ("landed", "short"), done
    assert not await account_exists(env, position_key(env, short_market(env), short_trader.key))
    assert await env.balance(short_trader.accounts["USDC"]) > usdc_before
    assert await account_exists(env, position_key(env, long_market(env), healthy.key))
    await assert_conserved(env)

    # A keeper started afterwards finds nothing to do: nothing is liquidated twice.
    summary = await run_once(config, keeper_wallet)
    assert liquidations(summary) == []


async def test_owner_token_account_created_when_missing(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await open_50x(env, short_market(env), usdc=20 * USDC)
    # The owner closes their (now empty) USDC account: the liquidation must create it again.
    from spl.token.instructions import CloseAccountParams, close_account

    usdc = trader.accounts["USDC"]
    await env.client.send(
        [
            close_account(
                CloseAccountParams(
                    program_id=env.mints["USDC"].program_id,
                    account=usdc,
                    dest=trader.key,
                    owner=trader.key,
                )
            )
        ],
        [trader.wallet],
    )
    assert not await account_exists(env, usdc)
    await set_prices(env, SOL=P100 * 1015 // 1000)
    summary = await run_once(keeper_config(env, tmp_path, keeper_wallet), keeper_wallet)
    (done,) = liquidations(summary)
    assert done["status"] == "landed", done
    assert await env.balance(get_associated_token_address(trader.key, env.mint("USDC"))) > 0


async def test_dry_run_simulates_and_sends_nothing(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await open_50x(env, long_market(env))
    await set_prices(env, SOL=P100 * 985 // 1000)
    config = keeper_config(env, tmp_path, keeper_wallet)
    config.keeper.dry_run = True
    summary = await run_once(config, keeper_wallet)
    assert summary["dry_run"] is True
    (done,) = liquidations(summary)
    assert done["status"] == "simulated", done
    assert all(r["status"] == "simulated" for r in summary["jobs"]["accrual"]["custodies"])
    assert await account_exists(env, position_key(env, long_market(env), trader.key))
    # The real run closes it; a liquidation sent for it afterwards is refused, not fatal.
    config.keeper.dry_run = False
    keeper = Keeper(config, keeper_wallet)
    summary = await keeper.run_once()
    (done,) = liquidations(summary)
    assert done["status"] == "landed", done
    again = Keeper(config, keeper_wallet)
    job = again.jobs["liquidation"]
    snapshot_summary = await job.tick()
    assert snapshot_summary["results"] == []
    await again.close()


async def test_borrow_and_funding_advance_on_schedule(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    # 0.01%/h at full utilization (rates have 9 decimals); prices stay valid for a day.
    await env.configure("SOL", **FEES, hourly_rate=100_000, max_price_age_sec=86_400)
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await new_trader(env, SOL=2 * SOL)
    await open_position(env, trader, long_market(env), collateral=SOL, size_usd=300 * USD)
    config = keeper_config(env, tmp_path, keeper_wallet, liquidation=False, aum=False)
    summary = await run_once(config, keeper_wallet)
    assert all(r["status"] == "landed" for r in summary["jobs"]["accrual"]["custodies"]), summary
    before = await env.custody("SOL")
    await env.advance(3_600)
    summary = await run_once(config, keeper_wallet)
    assert all(r["status"] == "landed" for r in summary["jobs"]["accrual"]["custodies"]), summary
    after = await env.custody("SOL")
    assert after.borrow_state.cumulative_interest > before.borrow_state.cumulative_interest
    assert after.borrow_state.last_update >= before.borrow_state.last_update + 3_600
    assert after.funding_state.last_update >= before.funding_state.last_update + 3_600
    await env.configure("SOL", **FEES)


async def test_oracle_posts_from_csv_then_stops_when_stale(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    csv = tmp_path / "sol.csv"
    csv.write_text("t,price\n0,101.25\n")
    config = keeper_config(
        env, tmp_path, keeper_wallet, accrual=False, liquidation=False, aum=False
    )
    config.jobs.oracle.enabled = True
    config.jobs.oracle.authority_keypair = str(write_keypair(tmp_path / "oracle.json", env.admin))
    config.jobs.oracle.feeds = [
        FeedConfig(
            pool=env.pool,
            mint=str(env.mint("SOL")),
            source="csv",
            path=str(csv),
            expo=EXPO,
            max_source_age_sec=1.0,
        )
    ]
    keys = env.client.custody_keys(env.pool, env.mint("SOL"))
    await env.advance(1)
    summary = await run_once(config, keeper_wallet)
    (feed,) = summary["jobs"]["oracle"]["feeds"]
    assert feed["status"] == "landed", feed
    oracle = await env.client.fetch("CustomOracle", keys.oracle)
    assert (oracle.price, oracle.expo) == (10_125_000_000, EXPO)
    assert oracle.publish_time <= await env.now()

    # The replay has no newer row: after max_source_age_sec it is stale and nothing is posted.
    keeper = Keeper(config, keeper_wallet)
    await asyncio.sleep(1.5)
    summary = await keeper.run_once()
    (feed,) = summary["jobs"]["oracle"]["feeds"]
    assert feed["status"] == "source_stale", feed
    assert summary["jobs"]["oracle"]["stale"] == [f"{env.pool}:{env.mint('SOL')}"]
    assert (await env.client.fetch("CustomOracle", keys.oracle)).publish_time == oracle.publish_time
    await resync(env)


class Forwarder:
    """A TCP forwarder to the validator that can be taken down and brought back on one port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.server is None:
                        break
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


async def test_rpc_failover_and_outage(
    env: PoolEnv, net: LocalnetProcess, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await open_50x(env, long_market(env))
    await set_prices(env, SOL=P100 * 985 // 1000)
    proxy = Forwarder(net.port)
    config = keeper_config(env, tmp_path, keeper_wallet, accrual=False, aum=False)
    config.rpc.urls = [f"http://127.0.0.1:{proxy.port}"]
    # Unreachable: every job reports the failure; nothing crashes.
    summary = await run_once(config, keeper_wallet)
    assert not summary["ok"]
    assert "every RPC URL failed" in json.dumps(summary)
    assert await account_exists(env, position_key(env, long_market(env), trader.key))
    # Back on the same URL: the position is liquidated.
    await proxy.up()
    try:
        summary = await run_once(config, keeper_wallet)
        (done,) = liquidations(summary)
        assert done["status"] == "landed", done
    finally:
        await proxy.down()
    # A dead first URL fails over to the next one.
    trader = await open_50x(env, short_market(env))
    await set_prices(env, SOL=P100 * 1015 // 1000)
    config.rpc.urls = [f"http://127.0.0.1:{free_port()}", env.url]
    keeper = Keeper(config, keeper_wallet)
    summary = await keeper.run_once()
    (done,) = liquidations(summary)
    assert (done["status"], done["side"]) == ("landed", "short"), done
    errors = keeper.metrics.rpc_failovers._value.get()
    assert errors >= 1
    await set_prices(env, SOL=P100)


class DroppingProxy(HttpStub):
    """An HTTP JSON-RPC proxy to the validator that accepts the first ``drops`` sendTransaction
    requests and throws the transactions away (answering with their signatures, as an RPC node
    whose forward to the leader was lost would), and forwards everything else."""

    def __init__(self, target_url: str, drops: int) -> None:
        super().__init__()
        self.target_url = target_url
        self.drops = drops
        self.dropped: list[str] = []
        self.forwarded_sends = 0
        self.http = httpx.AsyncClient(timeout=30)

    async def __aexit__(self, *exc: object) -> None:
        await super().__aexit__(*exc)
        await self.http.aclose()

    async def respond(self, request_line: str, body: bytes) -> tuple[int, bytes]:
        request = json.loads(body)
        if isinstance(request, dict) and request.get("method") == "sendTransaction":
            if len(self.dropped) < self.drops:
                raw = base64.b64decode(request["params"][0])
                signature = str(Transaction.from_bytes(raw).signatures[0])
                self.dropped.append(signature)
                reply = {"jsonrpc": "2.0", "id": request.get("id"), "result": signature}
                return 200, json.dumps(reply).encode()
            self.forwarded_sends += 1
        resp = await self.http.post(
            self.target_url, content=body, headers={"Content-Type": "application/json"}
        )
        return 200, resp.content


async def test_dropped_sends_are_rebroadcast_and_land_once(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await open_50x(env, long_market(env))
    await set_prices(env, SOL=P100 * 985 // 1000)
    config = keeper_config(env, tmp_path, keeper_wallet, accrual=False, aum=False)
    config.tx.rebroadcast_interval_sec = 0.3
    async with DroppingProxy(env.url, drops=2) as proxy:
        config.rpc.urls = [proxy.url]
        keeper = Keeper(config, keeper_wallet)
        summary = await keeper.run_once()
    (done,) = liquidations(summary)
    assert done["status"] == "landed", done
    # The first two sends of the same signed bytes were lost; a rebroadcast landed it.
    assert proxy.dropped == [done["signature"]] * 2
    assert proxy.forwarded_sends >= 1
    assert keeper.metrics.tx_rebroadcasts._value.get() >= 2
    assert not await account_exists(env, position_key(env, long_market(env), trader.key))
    # Landed once: a second pass finds nothing to do.
    again = await run_once(keeper_config(env, tmp_path, keeper_wallet, oracle=False), keeper_wallet)
    assert liquidations(again) == []
    await assert_conserved(env)
    await set_prices(env, SOL=P100)


def spawn_keeper(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "perpool_keeper.cli", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("ab"),
        env={**os.environ},
    )


async def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.2)


async def test_daemon_reacts_to_its_price_post_health_metrics_sigkill_restart(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    await set_prices(env, SOL=P100, USDC=1_000_000)
    trader = await open_50x(env, long_market(env))
    position = position_key(env, long_market(env), trader.key)
    sol_before = await env.balance(trader.accounts["SOL"])
    csv = tmp_path / "sol.csv"
    # $100 now, then -1.6% after 3 s (and it stays there).
    csv.write_text("t,price\n0,100\n3,98.4\n")
    port = free_port()
    config_path = tmp_path / "keeper.toml"
    oracle_key = write_keypair(tmp_path / "oracle.json", env.admin)
    config_path.write_text(
        f"""
[keeper]
keypair = "{write_keypair(tmp_path / "k.json", keeper_wallet)}"
pools = ["{env.pool}"]
[rpc]
urls = ["http://127.0.0.1:{free_port()}", "{env.url}"]
backoff_base_sec = 0.05
[http]
port = {port}
[health]
interval_sec = 0.5
[jobs.oracle]
enabled = true
interval_sec = 0.5
deviation_bps = 10
heartbeat_sec = 3600
authority_keypair = "{oracle_key}"
[[jobs.oracle.feeds]]
pool = "{env.pool}"
mint = "{env.mint("SOL")}"
source = "csv"
path = "{csv}"
expo = {EXPO}
max_source_age_sec = 3600
[jobs.accrual]
interval_sec = 2
[jobs.liquidation]
interval_sec = 30
[jobs.aum]
interval_sec = 2
"""
    )
    log_path = tmp_path / "keeper.log"
    proc = spawn_keeper(config_path, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        # The liquidation job ticks only every 30 s: the position is closed because the
        # keeper's own price post triggers an immediate run.
        async def gone() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            return not await account_exists(env, position)

        await wait_for(gone)
        assert await env.balance(trader.accounts["SOL"]) > sol_before

        async with httpx.AsyncClient() as http:

            async def healthy() -> bool:
                try:
                    resp = await http.get(f"{base}/health")
                except httpx.HTTPError:
                    return False
                return resp.status_code == 200

            await wait_for(healthy, 30)

            # The position disappears when the liquidation lands; the keeper counts it once
            # its confirmation poll sees it, a moment later.
            async def counted() -> bool:
                text = (await http.get(f"{base}/metrics")).text
                return 'perpool_keeper_liquidations_total{side="long"} 1.0' in text

            await wait_for(counted, 30)
            report = (await http.get(f"{base}/health")).json()
            assert report["healthy"] is True
            assert set(report["jobs"]) == {"oracle", "accrual", "liquidation", "aum"}
            assert report["chain"]["ok"] is True
            metrics = (await http.get(f"{base}/metrics")).text
        assert 'perpool_keeper_liquidations_total{side="long"} 1.0' in metrics
        assert "perpool_keeper_oracle_posts_total" in metrics
        assert "perpool_keeper_rpc_failovers_total" in metrics
        assert "perpool_keeper_scheduler_missed_runs" in metrics
        assert "perpool_keeper_chain_slot" in metrics

        # SIGKILL, restart: the new process finds nothing left to liquidate.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = spawn_keeper(config_path, log_path)

        async def ticked() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                async with httpx.AsyncClient() as http:
                    text = (await http.get(f"{base}/metrics")).text
            except httpx.HTTPError:
                return False
            return 'perpool_keeper_job_ticks_total{job="liquidation",outcome="ok"}' in text

        await wait_for(ticked, 30)
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"{base}/metrics")).text
        assert 'perpool_keeper_liquidations_total{side="long"}' not in text
        await assert_conserved(env)
    finally:
        # SIGTERM: drain and exit cleanly.
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log_path.read_text()[-3000:]
    assert '"msg": "keeper stopped"' in log_path.read_text()
    await resync(env)
    await set_prices(env, SOL=P100)


async def test_daemon_survives_a_localnet_restart(tmp_path: Path) -> None:
    """The validator behind the keeper stops and comes back (from genesis, on the same port):
    the daemon stays up, reports unhealthy while the chain is gone and goes back to work."""
    port, http_port = free_port(), free_port()
    ledger = tmp_path / "ledger"

    async def fresh_chain() -> tuple[LocalnetProcess, PoolEnv]:
        process = start_validator(port=port, ledger=ledger)
        pool_env = await build_pool_env(process.url, process.faucet(), TOKENS)
        for symbol in pool_env.specs:
            await pool_env.configure(symbol, **FEES)
        await provide_liquidity(pool_env, "SOL", 100 * SOL)
        await provide_liquidity(pool_env, "USDC", 10_000 * USDC)
        return process, pool_env

    net, env = await fresh_chain()
    keeper_wallet = Keypair()
    await airdrop(env.client.connection, keeper_wallet.pubkey(), 10 * 10**9)
    config_path = tmp_path / "keeper.toml"
    config_path.write_text(
        f"""
[keeper]
keypair = "{write_keypair(tmp_path / "k.json", keeper_wallet)}"
pools = ["{env.pool}"]
[rpc]
urls = ["{env.url}"]
backoff_base_sec = 0.05
[http]
port = {http_port}
[health]
interval_sec = 0.5
[jobs.oracle]
enabled = false
[jobs.accrual]
interval_sec = 1
[jobs.liquidation]
interval_sec = 0.5
[jobs.aum]
interval_sec = 1
"""
    )
    log_path = tmp_path / "keeper.log"
    proc = spawn_keeper(config_path, log_path)
    base = f"http://127.0.0.1:{http_port}"

    async def health() -> int | None:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            async with httpx.AsyncClient() as http:
                return (await http.get(f"{base}/health")).status_code
        except httpx.HTTPError:
            return None

    async def healthy() -> bool:
        return await health() == 200

    async def unhealthy() -> bool:
        return await health() == 503

    try:
        await wait_for(healthy, 30)
        net.stop()
        await env.client.close()
        await wait_for(unhealthy, 30)
        # Back from genesis on the same port: a new pool, a new under-margined position.
        net, env = await fresh_chain()
        await airdrop(env.client.connection, keeper_wallet.pubkey(), 10 * 10**9)
        trader = await open_50x(env, long_market(env))
        key = position_key(env, long_market(env), trader.key)
        await set_prices(env, SOL=P100 * 985 // 1000)

        async def liquidated() -> bool:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            return not await account_exists(env, key)

        await wait_for(liquidated, 60)
        await wait_for(healthy, 30)
        await assert_conserved(env)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        await env.client.close()
        net.stop()
    assert code == 0, log_path.read_text()[-3000:]


async def test_ladder_steps(env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path) -> None:
    """A two-step ladder: the keeper's first pass closes half the position (step 0), and the
    rest once the margin falls under the second step."""
    ladder = FEES | {
        "max_leverage": 100 * 10_000,
        "liquidation_steps": ((10_000, 5_000), (5_000, 10_000)),
    }
    pool = await add_pool(env, "keeper-ladder", TOKENS)
    await pool.configure("SOL", **ladder)
    await provide_liquidity(pool, "SOL", 100 * SOL)
    await provide_liquidity(pool, "USDC", 10_000 * USDC)
    trader = await new_trader(pool, SOL=2 * SOL)
    market = long_market(pool)
    # 20x: $2000 on 1 SOL. At $95.80 the margin (about $14 after fees) is under 1% of size.
    await open_position(pool, trader, market, collateral=SOL, size_usd=2_000 * USD)
    key = position_key(pool, market, trader.key)
    await set_prices(pool, SOL=9_580_000_000)
    config = keeper_config(pool, tmp_path, keeper_wallet, oracle=False, accrual=False, aum=False)
    config.keeper.pools = [pool.pool]
    (first,) = liquidations(await run_once(config, keeper_wallet))
    assert (first["status"], first["step"], first["remaining_size_usd"]) == (
        "landed",
        0,
        1_000 * USD,
    ), first
    assert (await pool.client.fetch("Position", key)).size_usd == 1_000 * USD
    await set_prices(pool, SOL=9_300_000_000)
    (last,) = liquidations(await run_once(config, keeper_wallet))
    assert (last["status"], last["step"], last["remaining_size_usd"]) == ("landed", 1, 0), last
    assert not await account_exists(pool, key)
    await assert_conserved(pool)


async def test_price_update_and_liquidation_go_in_one_transaction_when_the_oracle_is_nearly_stale(
    env: PoolEnv, keeper_wallet: Keypair, tmp_path: Path
) -> None:
    """The on-chain price is about to go stale and the keeper's source says the position is
    under water: the price update and the liquidation land together, atomically."""
    pool = await add_pool(env, "keeper-bundle", TOKENS)
    for symbol in pool.specs:
        await pool.configure(symbol, **(FEES | {"max_price_age_sec": 30}))
    await provide_liquidity(pool, "SOL", 100 * SOL)
    await provide_liquidity(pool, "USDC", 10_000 * USDC)
    trader = await open_50x(pool, long_market(pool))
    key = position_key(pool, long_market(pool), trader.key)
    csv = tmp_path / "sol.csv"
    csv.write_text("t,price\n0,98.4\n")
    config = keeper_config(pool, tmp_path, keeper_wallet, accrual=False, aum=False)
    config.keeper.pools = [pool.pool]
    config.jobs.oracle.enabled = True
    # A deviation threshold the move never reaches: the oracle job itself does not post.
    config.jobs.oracle.deviation_bps = 10_000
    config.jobs.oracle.heartbeat_sec = 10**6
    config.jobs.oracle.authority_keypair = str(write_keypair(tmp_path / "oracle.json", pool.admin))
    config.jobs.oracle.feeds = [
        FeedConfig(
            pool=pool.pool,
            mint=str(pool.mint("SOL")),
            source="csv",
            path=str(csv),
            expo=EXPO,
            max_source_age_sec=3600,
        )
    ]
    # 27 s of the 30 s price age gone: within the keeper's 5 s margin, still valid on chain.
    await pool.advance(27)
    summary = await run_once(config, keeper_wallet)
    (feed,) = summary["jobs"]["oracle"]["feeds"]
    assert feed["status"] != "landed", feed
    (done,) = liquidations(summary)
    assert done["status"] == "landed", done
    assert not await account_exists(pool, key)
    tx = await pool.client.connection.get_transaction(
        Signature.from_string(done["signature"]), max_supported_transaction_version=0
    )
    assert tx.value is not None
    meta = tx.value.transaction.meta
    assert meta is not None
    logs = list(meta.log_messages or [])
    assert "Program log: Instruction: SetCustomOraclePrice" in logs
    assert "Program log: Instruction: Liquidate" in logs
    oracle = await pool.client.fetch(
        "CustomOracle", pool.client.custody_keys(pool.pool, pool.mint("SOL")).oracle
    )
    assert (oracle.price, oracle.expo) == (9_840_000_000, EXPO)
    await assert_conserved(pool)
