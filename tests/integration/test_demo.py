"""The demo as a user runs it (``python -m perpool.demo --quick``), against a validator of its
own, with the real keeper daemon; its outputs are checked against the chain afterwards: the
PNG, the time series' last values against the accounts and the program's AUM view, every
reported liquidation against its transaction's event, the keeper's metrics and log and the
custodies' statistics, and token conservation in every custody."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matplotlib.image import imread
from pool_env import PoolEnv, TokenSpec
from solana.rpc.commitment import Confirmed
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.async_client import AsyncToken
from spl.token.constants import TOKEN_PROGRAM_ID
from trade_support import assert_conserved

from perpool.client import PerpoolClient
from perpool.demo.keeper import log_events
from perpool.demo.report import JSON_NAME, PNG_NAME, PNG_SIZE, SUMMARY_NAME
from perpool.demo.run import shipped_spec
from perpool.exchange import Exchange
from perpool.localnet import LocalnetProcess
from perpool.spec import load_spec
from perpool.txn import decode_events
from perpool.views import assets_under_management

DEMO_TIMEOUT_SEC = 240
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SERIES = (
    "step",
    "chainTime",
    "hours",
    "aumUsd",
    "aumCachedUsd",
    "lpSupply",
    "lpPriceUsd",
    "holdPriceUsd",
    "price",
    "utilization",
    "openInterestLongUsd",
    "openInterestShortUsd",
    "fees",
    "insuranceFundUsd",
    "liquidations",
    "liquidationVolumeUsd",
    "badDebtUsd",
)
FEE_SERIES = ("trading", "borrow", "lp", "swap", "liquidation", "protocol")


async def run_demo(url: str, out: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "perpool.demo",
        "--quick",
        "--url",
        url,
        "--out",
        str(out),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ},
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), DEMO_TIMEOUT_SEC)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"the demo did not finish within {DEMO_TIMEOUT_SEC}s")
    assert proc.returncode is not None
    return proc.returncode, output.decode(errors="replace")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_quick_demo_outputs_match_the_chain(
    start_localnet: Callable[..., LocalnetProcess], tmp_path: Path
) -> None:
    net = start_localnet()
    out = tmp_path / "demo-output"
    code, output = await run_demo(net.url, out)
    assert code == 0, output[-4000:]

    # The report: a PNG of the documented size that matplotlib reads back.
    png = out / PNG_NAME
    assert png_size(png) == PNG_SIZE
    assert imread(png).shape[:2] == (PNG_SIZE[1], PNG_SIZE[0])
    summary = (out / SUMMARY_NAME).read_text()
    assert "Liquidations:" in summary
    assert summary.strip() in output

    data: dict[str, Any] = json.loads((out / JSON_NAME).read_text())
    series = data["series"]
    points = len(series["step"])
    assert points >= data["options"]["steps"] // 2
    for key in SERIES:
        assert key in series, key
    assert set(FEE_SERIES) <= set(series["fees"])
    for column in (series["aumUsd"], series["lpPriceUsd"], series["liquidations"]):
        assert len(column) == points
    for per_symbol in (series["price"], series["utilization"]):
        assert set(per_symbol) == {"SOL", "ETH", "WBTC", "USDC", "USDT", "ETH2"}
        assert all(len(v) == points for v in per_symbol.values())
    assert series["step"] == sorted(series["step"])
    assert series["step"][-1] == data["options"]["steps"] - 1
    assert series["chainTime"] == sorted(series["chainTime"])
    # The clock jumps: hours of simulated time in well under a minute of wall time.
    assert series["hours"][-1] >= 4
    assert series["liquidations"] == sorted(series["liquidations"])
    assert max(series["openInterestLongUsd"]) > 0
    assert max(series["openInterestShortUsd"]) > 0
    assert data["checks"]["ok"] is True

    client = PerpoolClient.connect(net.url, Keypair())
    client.view_payer = Pubkey.from_string(data["keeper"]["pubkey"])
    try:
        ex = await Exchange.load(client, load_spec(shipped_spec()))
        await check_final_state(ex, data)
        await check_liquidations(ex, data, out)
        await assert_conserved(conservation_env(net.url, ex))
    finally:
        await client.close()


async def check_final_state(ex: Exchange, data: dict[str, Any]) -> None:
    """The last sample equals the chain now (nothing moves once the keeper has stopped)."""
    final, series = data["final"], data["series"]
    aum = await assets_under_management(ex.client, ex.pool_name)
    assert final["aumUsd"] == aum.spot_usd == series["aumUsd"][-1]
    assert final["lpPriceUsd"] == aum.lp_price_usd == series["lpPriceUsd"][-1]
    supply = int((await ex.client.connection.get_token_supply(ex.lp_mint)).value.amount)
    assert final["lpSupply"] == supply == aum.lp_supply == series["lpSupply"][-1]
    pool = await ex.client.fetch("Pool", ex.pool_key)
    assert final["aumCachedUsd"] == pool.aum_usd
    long_oi = short_oi = 0
    fees = dict.fromkeys(("trading", "borrow", "liquidation"), 0)
    for token in ex.tokens:
        custody = await ex.client.fetch("Custody", token.custody)
        mine = final["custodies"][token.symbol]
        a = custody.assets
        assert (mine["owned"], mine["locked"], mine["collateral"], mine["protocolFees"]) == (
            a.owned,
            a.locked,
            a.collateral,
            a.protocol_fees,
        ), token.symbol
        assert mine["insurance"] == custody.insurance.balance
        assert (mine["longOiUsd"], mine["shortOiUsd"]) == (
            custody.longs.size_usd,
            custody.shorts.size_usd,
        )
        long_oi += custody.longs.size_usd
        short_oi += custody.shorts.size_usd
        stats = custody.stats
        fees["trading"] += stats.fees_open_position_usd + stats.fees_close_position_usd
        fees["borrow"] += stats.fees_borrow_usd
        fees["liquidation"] += stats.fees_liquidation_usd
    assert series["openInterestLongUsd"][-1] == long_oi
    assert series["openInterestShortUsd"][-1] == short_oi
    for kind, value in fees.items():
        assert series["fees"][kind][-1] == value, kind
    assert fees["trading"] > 0
    assert fees["borrow"] > 0


async def check_liquidations(ex: Exchange, data: dict[str, Any], out: Path) -> None:
    """Each reported liquidation is a landed transaction with that PositionLiquidated event;
    the count equals the keeper's metrics and log, the closed size the custodies' stats."""
    liquidations = data["liquidations"]
    assert len(liquidations) >= 1
    assert data["series"]["liquidations"][-1] == len(liquidations)
    metrics = data["keeper"]["metrics"]
    keeper_total = sum(
        v for k, v in metrics.items() if k.startswith("perpool_keeper_liquidations_total")
    )
    assert keeper_total == len(liquidations)
    assert len(log_events(out / "keeper" / "keeper.log", "position liquidated")) == len(
        liquidations
    )
    keeper = data["keeper"]["pubkey"]
    for record in liquidations:
        tx = await ex.client.connection.get_transaction(
            Signature.from_string(record["signature"]),
            commitment=Confirmed,
            max_supported_transaction_version=0,
        )
        assert tx.value is not None
        meta = tx.value.transaction.meta
        assert meta is not None
        assert meta.err is None
        events = [
            e["data"]
            for e in decode_events(ex.client, list(meta.log_messages or []))
            if e["name"] == "PositionLiquidated"
        ]
        assert len(events) == 1
        (event,) = events
        assert event["liquidator"] == keeper
        assert event["owner"] == record["owner"]
        assert event["position"] == record["position"]
        assert int(event["sizeUsd"]) == record["sizeUsd"]
        assert int(event["remainingSizeUsd"]) == record["remainingSizeUsd"]
    volume = 0
    for token in ex.tokens:
        custody = await ex.client.fetch("Custody", token.custody)
        volume += custody.stats.volume_liquidation_usd
    assert volume == sum(x["sizeUsd"] for x in liquidations) > 0


def conservation_env(url: str, ex: Exchange) -> PoolEnv:
    """The pool of the shipped spec in the shape the trading tests' checks take."""
    conn = ex.client.connection
    return PoolEnv(
        url=url,
        client=ex.client,
        admin=ex.client.payer,
        specs={t.symbol: TokenSpec(t.symbol, t.decimals, t.stable, 1, 0) for t in ex.tokens},
        mints={
            t.symbol: AsyncToken(conn, t.mint, TOKEN_PROGRAM_ID, ex.client.payer) for t in ex.tokens
        },
        pool=ex.pool_name,
    )
