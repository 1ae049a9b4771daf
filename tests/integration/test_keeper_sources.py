"""perpool-keeper price sources against real endpoints: a Hermes-shaped HTTP server on a local
port (the keeper talks to it over TCP like to hermes.pyth.network) and Pyth ``PriceUpdateV2``
accounts loaded into the localnet. The oracle job posts a Hermes price to the pool's custom
oracle on chain."""

from __future__ import annotations

import json
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
from pyth_fixture import PriceUpdate, write_fixture
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool.localnet import LocalnetProcess
from perpool_keeper.config import FeedConfig, load_config
from perpool_keeper.daemon import Keeper
from perpool_keeper.metrics import Metrics
from perpool_keeper.rpc import RpcPool
from perpool_keeper.sources import HermesSource, PythAccountSource, SourceError

pytestmark = pytest.mark.asyncio(loop_scope="module")

FEED = bytes(range(32))
FULL = Keypair().pubkey()
PARTIAL = Keypair().pubkey()
TOKENS = (
    TokenSpec("SOL", 9, False, 100 * 10**8, -8),
    TokenSpec("USDC", 6, True, 1_000_000, -6),
)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetProcess]:
    folder = tmp_path_factory.mktemp("pyth")
    now = int(time.time())
    args: list[str] = []
    for address, partial in ((FULL, None), (PARTIAL, 3)):
        update = PriceUpdate(
            feed_id=FEED,
            price=101_25000000,
            conf=5_000000,
            exponent=-8,
            publish_time=now,
            ema_price=100_75000000,
            partial_signatures=partial,
        )
        path = write_fixture(folder / f"{address}.json", address, update.encode())
        args += ["--account", str(address), str(path)]
    process = start_validator(extra_args=args)
    yield process
    process.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(net: LocalnetProcess) -> AsyncIterator[PoolEnv]:
    pool_env = await build_pool_env(net.url, net.faucet(), TOKENS)
    yield pool_env
    await pool_env.client.close()


class HermesStub(HttpStub):
    """Serves ``GET /v2/updates/price/latest`` like Hermes, from ``self.entries``; ``status``
    forces an HTTP error."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict[str, Any]] = []
        self.status = 200

    async def respond(self, request_line: str, body: bytes) -> tuple[int, bytes]:
        if not request_line.startswith("GET /v2/updates/price/latest?"):
            return 404, b"{}"
        answer = json.dumps({"binary": {"data": []}, "parsed": self.entries}).encode()
        return self.status, answer


def hermes_entry(price: int, ema: int, publish_time: int, expo: int = -8) -> dict[str, Any]:
    def part(value: int) -> dict[str, Any]:
        return {"price": str(value), "conf": "1000", "expo": expo, "publish_time": publish_time}

    return {"id": FEED.hex(), "price": part(price), "ema_price": part(ema), "metadata": {}}


async def test_hermes_source_reads_prices_and_reports_failures() -> None:
    async with HermesStub() as hermes, httpx.AsyncClient(timeout=5) as http:
        feed = FeedConfig(pool="p", mint="m", source="hermes", url=hermes.url, feed_id=FEED.hex())
        source = HermesSource(feed, http)
        hermes.entries = [hermes_entry(101_25000000, 100_75000000, 1_700_000_000)]
        quote = await source.fetch()
        assert (quote.price, quote.ema, quote.expo, quote.conf) == (
            101_25000000,
            100_75000000,
            -8,
            1000,
        )
        assert quote.publish_time == 1_700_000_000
        hermes.entries = [hermes_entry(0, 100_75000000, 1_700_000_000)]
        with pytest.raises(SourceError, match="non-positive"):
            await source.fetch()
        hermes.entries = []
        with pytest.raises(SourceError, match="StopIteration"):
            await source.fetch()
        hermes.status = 500
        with pytest.raises(SourceError, match="HTTPStatusError"):
            await source.fetch()


async def test_pyth_account_source_reads_the_onchain_update(env: PoolEnv, tmp_path: Path) -> None:
    config = load_config(None, {"PERPOOL_KEEPER__RPC__URLS": env.url})
    rpc = RpcPool(config.rpc, Keypair(), Metrics())
    try:
        feed = FeedConfig(pool="p", mint="m", source="pyth_account", address=str(FULL))
        quote = await PythAccountSource(feed, rpc).fetch()
        assert (quote.price, quote.ema, quote.expo, quote.conf) == (
            101_25000000,
            100_75000000,
            -8,
            5_000000,
        )
        partial = FeedConfig(pool="p", mint="m", source="pyth_account", address=str(PARTIAL))
        with pytest.raises(SourceError, match="partially verified"):
            await PythAccountSource(partial, rpc).fetch()
        missing = FeedConfig(
            pool="p", mint="m", source="pyth_account", address=str(Pubkey.new_unique())
        )
        with pytest.raises(SourceError, match="does not exist"):
            await PythAccountSource(missing, rpc).fetch()
    finally:
        await rpc.close()


async def test_oracle_job_posts_a_hermes_price_on_chain(env: PoolEnv, tmp_path: Path) -> None:
    client = env.client
    oracle_key = client.custody_keys(env.pool, env.mint("SOL")).oracle
    before = await client.fetch("CustomOracle", oracle_key)
    authority = tmp_path / "oracle.json"
    authority.write_text(json.dumps(list(bytes(env.admin))))
    async with HermesStub() as hermes:
        # Published one second after the last on-chain price, never ahead of the chain clock.
        await env.advance(2)
        published = before.publish_time + 1
        hermes.entries = [hermes_entry(103_50000000, 102_00000000, published)]
        config = load_config(
            None,
            {
                "PERPOOL_KEEPER__RPC__URLS": env.url,
                "PERPOOL_KEEPER__HTTP__ENABLED": "false",
                "PERPOOL_KEEPER__KEEPER__KEYPAIR": str(authority),
            },
        )
        config.keeper.pools = [env.pool]
        config.jobs.oracle.enabled = True
        config.jobs.oracle.authority_keypair = str(authority)
        config.jobs.oracle.feeds = [
            FeedConfig(
                pool=env.pool,
                mint=str(env.mint("SOL")),
                source="hermes",
                url=hermes.url,
                feed_id=FEED.hex(),
                max_source_age_sec=10**9,
            )
        ]
        for job in ("accrual", "liquidation", "aum"):
            getattr(config.jobs, job).enabled = False
        summary = await Keeper(config, env.admin).run_once()
    assert summary["ok"], summary
    after = await client.fetch("CustomOracle", oracle_key)
    assert (after.price, after.ema, after.expo) == (103_50000000, 102_00000000, -8)
    assert after.publish_time == published
