"""perpool-keeper pieces that need no chain: config loading and overrides, sources, the
PriceUpdateV2 parser, RPC error classification, health."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pyth_fixture import PriceUpdate

from perpool_keeper.config import FeedConfig, KeeperConfigError, load_config
from perpool_keeper.pyth import parse_price_update
from perpool_keeper.rpc import classify
from perpool_keeper.sources import CsvSource, SourceError, SyntheticSource

EXAMPLE = Path(__file__).resolve().parents[2] / "keeper" / "keeper.example.toml"


def test_example_config_loads_and_env_overrides_win() -> None:
    config = load_config(
        EXAMPLE,
        {
            "PERPOOL_KEEPER__RPC__URLS": "http://a:1,http://b:2",
            "PERPOOL_KEEPER__JOBS__LIQUIDATION__INTERVAL_SEC": "0.5",
            "PERPOOL_KEEPER__KEEPER__DRY_RUN": "true",
            "UNRELATED": "x",
        },
    )
    assert config.rpc.urls == ["http://a:1", "http://b:2"]
    assert config.jobs.liquidation.interval_sec == 0.5
    assert config.keeper.dry_run is True
    assert config.jobs.oracle.feeds[0].source == "synthetic"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PERPOOL_KEEPER__RPC__URLZ": "x"}, "unknown keys"),
        ({"PERPOOL_KEEPER__RPC__TIMEOUT_SEC": "soon"}, "expected a number"),
        ({"PERPOOL_KEEPER__JOBS__AUM__INTERVAL_SEC": "0"}, "must be positive"),
        ({"PERPOOL_KEEPER__RPC__URLS": "[]"}, "at least one RPC URL"),
    ],
)
def test_bad_config_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(KeeperConfigError, match=message):
        load_config(None, env)


async def test_synthetic_walk_is_deterministic_per_seed() -> None:
    feed = FeedConfig(pool="p", mint="m", source="synthetic", seed=3, start_price=50.0, expo=-6)
    a, b = SyntheticSource(feed), SyntheticSource(feed)
    walk_a = [(await a.fetch()).price for _ in range(20)]
    walk_b = [(await b.fetch()).price for _ in range(20)]
    assert walk_a == walk_b
    assert walk_a[0] == 50_000_000
    assert len(set(walk_a)) > 1


async def test_csv_replay_follows_rows_then_ages(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("t,price,conf\n0,10.5,0.01\n5,11\n")
    now = [1000.0]
    source = CsvSource(
        FeedConfig(pool="p", mint="m", source="csv", path=str(path), expo=-2),
        clock=lambda: now[0],
    )
    quote = await source.fetch()
    assert (quote.price, quote.conf, quote.observed_at) == (1050, 1, 1000.0)
    now[0] = 1007.0
    quote = await source.fetch()
    assert (quote.price, quote.observed_at) == (1100, 1005.0)
    empty = tmp_path / "e.csv"
    empty.write_text("t,price\n")
    with pytest.raises(SourceError):
        CsvSource(FeedConfig(pool="p", mint="m", source="csv", path=str(empty)))


def test_price_update_v2_parsed_like_the_program() -> None:
    update = PriceUpdate(bytes(range(32)), 6_512_345, 1_000, -5, 1_700_000_000, 6_500_000)
    pyth = parse_price_update(update.encode())
    assert pyth.fully_verified
    assert (pyth.price, pyth.conf, pyth.expo, pyth.publish_time, pyth.ema) == (
        6_512_345,
        1_000,
        -5,
        1_700_000_000,
        6_500_000,
    )
    partial = PriceUpdate(bytes(32), 1, 0, -5, 1, 1, partial_signatures=3)
    assert not parse_price_update(partial.encode()).fully_verified
    assert parse_price_update(partial.encode()).price == 1


def test_rpc_errors_classified() -> None:
    request = httpx.Request("POST", "http://x")
    limited = httpx.HTTPStatusError("429", request=request, response=httpx.Response(429))
    assert classify(limited) == "rate_limited"
    assert classify(httpx.ConnectError("refused")) == "transport"
    assert classify(TimeoutError()) == "transport"
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = httpx.ReadTimeout("slow")
    assert classify(wrapped) == "transport"
    assert classify(ValueError("program error")) is None
