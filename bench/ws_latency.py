"""Websocket notification latency and subscription capacity of the localnet.

    .venv/bin/python bench/ws_latency.py --iterations 200 --connections 50 --subs 1000

Latency: one connection holds accountSubscribe (processed and confirmed), logsSubscribe
(mentions, processed) and, per transfer, signatureSubscribe (processed). Each iteration signs a
transfer to the watched account and times from just before ``sendTransaction`` is posted (the
transaction executes while that request is served) until each notification is received.

Capacity: ``--connections`` websocket connections each open ``--subs`` accountSubscribe
subscriptions (processed) on one account; one transfer must then reach every subscription.
Reports the time until the last notification arrived and the validator's resident memory.

The validator is started here (fresh genesis, free port, ``--slot-ms``), unless ``--url`` names
a running one (then ``--faucet`` must name its faucet keypair file).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from perpool.localnet import LocalnetProcess, read_keypair

LAMPORTS_PER_SOL = 1_000_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


class Rpc:
    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(timeout=30)
        self.url = url
        self.ids = 0

    async def call(self, method: str, params: list[Any] | None = None) -> Any:
        self.ids += 1
        body = {"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params or []}
        answer = (await self.http.post(self.url, json=body)).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def blockhash(self) -> Hash:
        value = await self.call("getLatestBlockhash", [{"commitment": "processed"}])
        return Hash.from_string(value["value"]["blockhash"])

    async def send(self, tx: Transaction) -> str:
        encoded = base64.b64encode(bytes(tx)).decode()
        return str(await self.call("sendTransaction", [encoded, {"encoding": "base64"}]))


class Subscriber:
    """One websocket connection; routes notifications by subscription id to waiters."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.next_id = 0
        self.answers: dict[int, asyncio.Future[Any]] = {}
        self.waiters: dict[int, asyncio.Queue[tuple[float, Any]]] = {}
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        async for raw in self.conn:
            received = time.perf_counter()
            message = json.loads(raw)
            if "id" in message and message["id"] in self.answers:
                self.answers.pop(message["id"]).set_result(message)
            elif "params" in message:
                sub = message["params"]["subscription"]
                self.waiters.setdefault(sub, asyncio.Queue()).put_nowait(
                    (received, message["params"]["result"])
                )

    async def subscribe(self, method: str, params: list[Any]) -> int:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.answers[self.next_id] = future
        await self.conn.send(
            json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        )
        answer = await asyncio.wait_for(future, 60)
        sub = int(answer["result"])
        self.waiters.setdefault(sub, asyncio.Queue())
        return sub

    async def next(self, sub: int, timeout: float = 60) -> tuple[float, Any]:
        return await asyncio.wait_for(self.waiters[sub].get(), timeout)

    async def close(self) -> None:
        await self.conn.close()
        self.reader.cancel()


def transfer_tx(payer: Keypair, to: Pubkey, lamports: int, blockhash: Hash) -> Transaction:
    ix = transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=to, lamports=lamports))
    return Transaction([payer], Message([ix], payer.pubkey()), blockhash)


async def latency(
    rpc: Rpc, ws_url: str, faucet: Keypair, iterations: int, slot_seconds: float
) -> dict[str, Any]:
    target = Keypair().pubkey()
    sub = Subscriber(await ws_connect(ws_url))
    processed = await sub.subscribe(
        "accountSubscribe", [str(target), {"encoding": "base64", "commitment": "processed"}]
    )
    confirmed = await sub.subscribe(
        "accountSubscribe", [str(target), {"encoding": "base64", "commitment": "confirmed"}]
    )
    logs = await sub.subscribe(
        "logsSubscribe", [{"mentions": [str(target)]}, {"commitment": "processed"}]
    )
    results: dict[str, list[float]] = {
        "account_processed": [],
        "account_confirmed": [],
        "logs_processed": [],
        "signature_processed": [],
        "send_answered": [],
    }
    for i in range(iterations):
        # A random point within the slot, so confirmed latency is not phase-locked to it.
        await asyncio.sleep(random.uniform(0, slot_seconds))
        tx = transfer_tx(faucet, target, LAMPORTS_PER_SOL + i, await rpc.blockhash())
        signature = str(tx.signatures[0])
        sig_sub = await sub.subscribe(
            "signatureSubscribe", [signature, {"commitment": "processed"}]
        )
        started = time.perf_counter()
        await rpc.send(tx)
        results["send_answered"].append(time.perf_counter() - started)
        for name, sid in (
            ("account_processed", processed),
            ("logs_processed", logs),
            ("signature_processed", sig_sub),
            ("account_confirmed", confirmed),
        ):
            received, _ = await sub.next(sid)
            results[name].append(received - started)
    await sub.close()
    return {name: summary(values) for name, values in results.items()}


async def capacity(
    rpc: Rpc, ws_url: str, faucet: Keypair, connections: int, subs: int
) -> dict[str, Any]:
    target = Keypair().pubkey()
    params = [str(target), {"encoding": "base64", "commitment": "processed"}]
    subscribers = [Subscriber(await ws_connect(ws_url)) for _ in range(connections)]
    opened = time.perf_counter()
    ids = await asyncio.gather(
        *(
            asyncio.gather(*(s.subscribe("accountSubscribe", params) for _ in range(subs)))
            for s in subscribers
        )
    )
    subscribe_seconds = time.perf_counter() - opened
    total = sum(len(group) for group in ids)
    tx = transfer_tx(faucet, target, LAMPORTS_PER_SOL, await rpc.blockhash())
    # Every waiter is in place before the change, so the client is idle when it happens.
    waiting = asyncio.ensure_future(
        asyncio.gather(
            *(
                s.next(sub_id, timeout=120)
                for s, group in zip(subscribers, ids, strict=True)
                for sub_id in group
            )
        )
    )
    await asyncio.sleep(2)
    started = time.perf_counter()
    await rpc.send(tx)
    arrivals = await waiting
    last = max(received for received, _ in arrivals) - started
    first = min(received for received, _ in arrivals) - started
    await asyncio.gather(*(s.close() for s in subscribers))
    return {
        "connections": connections,
        "subscriptions": total,
        "notified": len(arrivals),
        "subscribe_all_s": round(subscribe_seconds, 2),
        "first_notification_ms": round(first * 1000, 2),
        "last_notification_ms": round(last * 1000, 2),
    }


def printed_ws_url(net: LocalnetProcess) -> str | None:
    for line in net.stdout_path.read_text(errors="replace").splitlines():
        if line.startswith("WebSocket URL: "):
            return line.removeprefix("WebSocket URL: ").strip()
    return None


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    net = None
    if args.url:
        url = args.url
        host, port = url.removeprefix("http://").rsplit(":", 1)
        ws_url = args.ws_url or f"ws://{host}:{int(port) + 1}"
        faucet = read_keypair(Path(args.faucet))
    else:
        net = LocalnetProcess.start(slot_ms=args.slot_ms)
        url = net.url
        ws_url = printed_ws_url(net) or f"ws://127.0.0.1:{net.port + 1}"
        faucet = net.faucet()
    rpc = Rpc(url)
    try:
        out: dict[str, Any] = {"slot_ms": args.slot_ms if net else None}
        out["latency"] = await latency(rpc, ws_url, faucet, args.iterations, args.slot_ms / 1000)
        if net:
            out["rss_before_capacity_mib"] = rss_mib(net.process.pid)
        out["capacity"] = await capacity(rpc, ws_url, faucet, args.connections, args.subs)
        if net:
            out["rss_after_capacity_mib"] = rss_mib(net.process.pid)
        return out
    finally:
        await rpc.http.aclose()
        if net:
            net.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--subs", type=int, default=1000, help="subscriptions per connection")
    parser.add_argument("--slot-ms", type=int, default=400)
    parser.add_argument("--url", help="use a running validator instead of starting one")
    parser.add_argument("--ws-url", help="its websocket URL (default: RPC port + 1)")
    parser.add_argument("--faucet", help="the running validator's faucet keypair file")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.url and not args.faucet:
        parser.error("--url needs --faucet")
    result = asyncio.run(run(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
