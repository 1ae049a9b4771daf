"""Plain SOL transfers per second through JSON-RPC, from one and from several Python processes.

    .venv/bin/python bench/tps.py                         # own localnet; 1 and 4 processes
    .venv/bin/python bench/tps.py --processes 1,2,4,8 --count 1000
    .venv/bin/python bench/tps.py --url http://127.0.0.1:8899

Each process funds its own sender, then (after all processes are ready) signs and sends
``--count`` transfers with up to ``--concurrency`` requests in flight (sendTransaction with
preflight, unless ``--skip-preflight``), then polls getSignatureStatuses until every transfer is
confirmed or ``--max-seconds`` pass. Reported: send rate (accepted by the RPC per second) and
landed TPS (confirmed transfers / time from first send to last confirmation). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.message import Message
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus

from perpool.localnet import LocalnetError, LocalnetProcess, airdrop

LAMPORTS_PER_SOL = 1_000_000_000
STATUS_BATCH = 256
BLOCKHASH_REFRESH_EVERY = 200
CONFIRMED_RANK = int(TransactionConfirmationStatus.Confirmed)


@dataclass
class WorkerResult:
    worker: int
    sent: int
    accepted: int
    rejected: int
    landed: int
    failed_on_chain: int
    start: float  # time.time() of the first send
    sent_done: float
    end: float  # time.time() when the last transfer was seen confirmed (or the deadline)
    first_error: str | None

    @property
    def send_rate(self) -> float:
        return self.accepted / max(self.sent_done - self.start, 1e-9)

    @property
    def tps(self) -> float:
        return self.landed / max(self.end - self.start, 1e-9)


@dataclass(frozen=True)
class Config:
    url: str
    count: int
    concurrency: int
    skip_preflight: bool
    max_seconds: float


async def _worker(index: int, cfg: Config, barrier: Any) -> WorkerResult:
    async with AsyncClient(cfg.url, commitment=Confirmed, timeout=60) as client:
        sender, recipient = Keypair(), Keypair()
        await airdrop(client, sender.pubkey(), 100 * LAMPORTS_PER_SOL)
        await airdrop(client, recipient.pubkey(), LAMPORTS_PER_SOL)
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=cfg.skip_preflight,
            preflight_commitment=Processed,
        )
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)

        signatures: list[Signature] = []
        rejected = 0
        first_error: str | None = None
        semaphore = asyncio.Semaphore(cfg.concurrency)

        async def send(tx: Transaction) -> None:
            nonlocal rejected, first_error
            async with semaphore:
                try:
                    signatures.append((await client.send_raw_transaction(bytes(tx), opts)).value)
                except RPCException as exc:
                    rejected += 1
                    first_error = first_error or repr(exc.args[0])[:300]

        start = time.time()
        tasks: list[asyncio.Task[None]] = []
        blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
        for i in range(cfg.count):
            if i and i % BLOCKHASH_REFRESH_EVERY == 0:
                blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
            # Distinct amounts give distinct signatures.
            ix = transfer(
                TransferParams(
                    from_pubkey=sender.pubkey(), to_pubkey=recipient.pubkey(), lamports=1 + i
                )
            )
            tx = Transaction([sender], Message([ix], sender.pubkey()), blockhash)
            tasks.append(asyncio.create_task(send(tx)))
            if len(tasks) >= cfg.concurrency * 4:
                await asyncio.gather(*tasks)
                tasks.clear()
        await asyncio.gather(*tasks)
        sent_done = time.time()

        pending = list(signatures)
        landed = failed = 0
        deadline = time.monotonic() + cfg.max_seconds
        end = time.time()
        while pending and time.monotonic() < deadline:
            still: list[Signature] = []
            for chunk_start in range(0, len(pending), STATUS_BATCH):
                chunk = pending[chunk_start : chunk_start + STATUS_BATCH]
                statuses = (await client.get_signature_statuses(chunk)).value
                for sig, status in zip(chunk, statuses, strict=True):
                    if (
                        status is None
                        or status.confirmation_status is None
                        or int(status.confirmation_status) < CONFIRMED_RANK
                    ):
                        still.append(sig)
                    elif status.err is None:
                        landed += 1
                    else:
                        failed += 1
            end = time.time()
            pending = still
            if pending:
                await asyncio.sleep(0.05)

        return WorkerResult(
            worker=index,
            sent=cfg.count,
            accepted=len(signatures),
            rejected=rejected,
            landed=landed,
            failed_on_chain=failed,
            start=start,
            sent_done=sent_done,
            end=end,
            first_error=first_error,
        )


def _worker_entry(index: int, cfg: Config, barrier: Any, results: Any) -> None:
    try:
        results.put(asdict(asyncio.run(_worker(index, cfg, barrier))))
    except BaseException as exc:  # report, never hang the parent
        barrier.abort()
        results.put({"worker": index, "error": repr(exc)})


def run_round(cfg: Config, processes: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker_entry, args=(i, cfg, barrier, results), daemon=True)
        for i in range(processes)
    ]
    for proc in workers:
        proc.start()
    collected: list[dict[str, Any]] = []
    deadline = time.monotonic() + cfg.max_seconds + 120
    while len(collected) < processes and time.monotonic() < deadline:
        try:
            collected.append(results.get(timeout=1.0))
        except Exception:  # queue.Empty
            if not any(p.is_alive() for p in workers) and results.empty():
                break
    for proc in workers:
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
    errors = [r["error"] for r in collected if "error" in r]
    if errors or len(collected) < processes:
        raise LocalnetError(f"{processes} process(es): {errors or 'workers did not report'}")
    rows = [WorkerResult(**r) for r in collected]
    start = min(r.start for r in rows)
    end = max(r.end for r in rows)
    sent_done = max(r.sent_done for r in rows)
    landed = sum(r.landed for r in rows)
    accepted = sum(r.accepted for r in rows)
    return {
        "processes": processes,
        "transfers": sum(r.sent for r in rows),
        "accepted": accepted,
        "rejected": sum(r.rejected for r in rows),
        "landed": landed,
        "failed_on_chain": sum(r.failed_on_chain for r in rows),
        "send_rate": round(accepted / max(sent_done - start, 1e-9), 1),
        "tps": round(landed / max(end - start, 1e-9), 1),
        "per_process_tps_median": round(statistics.median(r.tps for r in rows), 1),
        "first_error": next((r.first_error for r in rows if r.first_error), None),
    }


def _check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(
            f"error: {url} is not a loopback address; this benchmark only runs locally"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SOL transfer throughput through JSON-RPC")
    parser.add_argument("--url", help="use a running localnet (default: start one)")
    parser.add_argument("--processes", default="1,4", help="comma-separated process counts")
    parser.add_argument("--count", type=int, default=500, help="transfers per process")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="requests in flight per process"
    )
    parser.add_argument("--skip-preflight", action="store_true")
    parser.add_argument(
        "--slot-ms", type=int, help="slot length for the localnet this script starts"
    )
    parser.add_argument("--max-seconds", type=float, default=120.0, help="confirmation wait limit")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    if not counts or any(not 1 <= k <= 64 for k in counts):
        parser.error("--processes: values between 1 and 64")
    if not 1 <= args.count <= 100_000:
        parser.error("--count: between 1 and 100000")
    if not 1 <= args.concurrency <= 1024:
        parser.error("--concurrency: between 1 and 1024")

    net: LocalnetProcess | None = None
    try:
        if args.url:
            _check_loopback(args.url)
            url = args.url
        else:
            net = LocalnetProcess.start(slot_ms=args.slot_ms)
            url = net.url
        print(
            f"url {url}; {args.count} transfers per process, {args.concurrency} in flight, "
            f"preflight {'off' if args.skip_preflight else 'on'}",
            flush=True,
        )
        cfg = Config(url, args.count, args.concurrency, args.skip_preflight, args.max_seconds)
        rounds = []
        for k in counts:
            result = run_round(cfg, k)
            rounds.append(result)
            print(
                f"{k:3d} process(es): {result['landed']}/{result['transfers']} landed, "
                f"send rate {result['send_rate']:8.1f}/s, landed TPS {result['tps']:8.1f}/s"
                + (f", rejected {result['rejected']}" if result["rejected"] else "")
                + (f", failed {result['failed_on_chain']}" if result["failed_on_chain"] else ""),
                flush=True,
            )
            if result["first_error"]:
                print(f"    first error: {result['first_error']}", flush=True)
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if net is not None:
            net.stop()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"url": url, "rounds": rounds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
