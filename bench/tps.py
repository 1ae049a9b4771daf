"""Transactions per second through JSON-RPC, from one and from several Python processes: plain
SOL transfers and Perpool program instructions.

    .venv/bin/python bench/tps.py                          # own localnet; transfer, swap, trade
    .venv/bin/python bench/tps.py --kinds transfer --processes 1,2,4,8 --count 1000
    .venv/bin/python bench/tps.py --url http://127.0.0.1:8899

Kinds (``--kinds``, comma-separated):

* ``transfer``: a System Program transfer (one signature, no program of ours);
* ``swap``: a Perpool ``swap`` between SOL and USDC (alternating directions; the program values
  both custodies at their oracle prices and moves tokens through two SPL Token CPIs);
* ``trade``: Perpool ``open_position`` (a 2x SOL long) and ``close_position`` in turn, each
  lane with its own trader; a close is sent once its open was answered (the localnet executes a
  transaction while answering ``sendTransaction``, so the close's preflight sees the position).

For the program kinds the pool of the shipped spec is set up first (``perpool.pool_setup``,
seed liquidity), and each process funds its traders from the localnet faucet. Then each process
(after all are ready) sends ``--count`` transactions over ``--concurrency`` lanes (one request
in flight per lane; ``sendTransaction`` with preflight unless ``--skip-preflight``) and polls
``getSignatureStatuses`` until every one is confirmed or ``--max-seconds`` pass. Reported per
kind and process count: send rate (accepted by the RPC per second of sending) and landed TPS
(confirmed without error / time from the first send to the last confirmation). Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchlib import check_loopback, process_cpu_seconds, write_json
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from solders.transaction_status import TransactionConfirmationStatus
from spl.token.instructions import get_associated_token_address

from perpool import trade
from perpool.client import PerpoolClient
from perpool.exchange import Exchange
from perpool.faucet import faucet
from perpool.localnet import LocalnetError, LocalnetProcess, airdrop
from perpool.lp_actions import deposit
from perpool.pool_setup import setup_pool
from perpool.spec import default_spec_path, load_spec
from perpool.trade import Market

LAMPORTS_PER_SOL = 1_000_000_000
USD = 1_000_000
STATUS_BATCH = 256
BLOCKHASH_REFRESH_SEC = 2.0
CONFIRMED_RANK = int(TransactionConfirmationStatus.Confirmed)
KINDS = ("transfer", "swap", "trade")
PROGRAM_KINDS = ("swap", "trade")
INSTRUCTIONS = {
    "transfer": "SOL transfer",
    "swap": "Perpool swap",
    "trade": "Perpool open/close position",
}


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
    end: float  # time.time() when the last transaction was seen confirmed (or the deadline)
    first_error: str | None
    validator_cpu: tuple[float, float] | None
    """The validator's CPU seconds when sending started and when confirmation ended."""

    @property
    def send_rate(self) -> float:
        return self.accepted / max(self.sent_done - self.start, 1e-9)

    @property
    def tps(self) -> float:
        return self.landed / max(self.end - self.start, 1e-9)


@dataclass(frozen=True)
class Config:
    url: str
    kind: str
    count: int
    concurrency: int
    skip_preflight: bool
    max_seconds: float
    validator_pid: int | None = None


Build = Callable[[int, int, Hash], Transaction]
"""(lane, index within the lane, blockhash) → a signed transaction."""


async def _transfer_builder(client: AsyncClient, lanes: int) -> Build:
    sender, recipient = Keypair(), Keypair()
    await airdrop(client, sender.pubkey(), 100 * LAMPORTS_PER_SOL)
    await airdrop(client, recipient.pubkey(), LAMPORTS_PER_SOL)

    def build(lane: int, k: int, blockhash: Hash) -> Transaction:
        # Distinct amounts give distinct signatures.
        lamports = 1 + lane + k * lanes
        ix = transfer(
            TransferParams(
                from_pubkey=sender.pubkey(), to_pubkey=recipient.pubkey(), lamports=lamports
            )
        )
        return Transaction([sender], Message([ix], sender.pubkey()), blockhash)

    return build


async def _program_builder(url: str, kind: str, lanes: int) -> Build:
    spec = load_spec(default_spec_path())
    client = PerpoolClient.connect(url, Keypair(), timeout=60)
    ex = await Exchange.load(client, spec)
    sol, usdc = ex.token("SOL"), ex.token("USDC")
    owners = [Keypair() for _ in range(lanes if kind == "trade" else 1)]
    gate = asyncio.Semaphore(8)

    async def fund(owner: Keypair) -> None:
        async with gate:
            await faucet(ex, url, "SOL", "1000", owner.pubkey(), sol_text="10")
            await faucet(ex, url, "USDC", "100000", owner.pubkey())

    await asyncio.gather(*(fund(o) for o in owners))
    accounts = {
        (o.pubkey(), t.mint): get_associated_token_address(o.pubkey(), t.mint)
        for o in owners
        for t in (sol, usdc)
    }
    market = Market.long(ex.pool_name, sol.mint)

    def build_swap(lane: int, k: int, blockhash: Hash) -> Transaction:
        owner = owners[0]
        i = lane + k * lanes
        # Alternate directions so balances stay put; the amounts differ, so do the signatures.
        src, dst, amount = (usdc, sol, USD + i) if i % 2 == 0 else (sol, usdc, 10**7 + i)
        ix = trade.swap_ix(
            client,
            owner.pubkey(),
            ex.pool_name,
            src.mint,
            dst.mint,
            amount,
            funding_account=accounts[(owner.pubkey(), src.mint)],
            receiving_account=accounts[(owner.pubkey(), dst.mint)],
        )
        return Transaction([owner], Message([ix], owner.pubkey()), blockhash)

    def build_trade(lane: int, k: int, blockhash: Hash) -> Transaction:
        owner = owners[lane]
        account = accounts[(owner.pubkey(), sol.mint)]
        if k % 2 == 0:
            # 1 SOL of collateral ($150 at the spec's price), about 2x; sizes differ per open.
            ix = trade.open_position_ix(
                client,
                owner.pubkey(),
                market,
                collateral_amount=LAMPORTS_PER_SOL,
                size_usd=300 * USD + k,
                funding_account=account,
            )
        else:
            # Any low limit accepts the exit price; a different one per close gives a
            # different signature.
            ix = trade.close_position_ix(
                client, owner.pubkey(), market, receiving_account=account, price_limit=k
            )
        return Transaction([owner], Message([ix], owner.pubkey()), blockhash)

    return build_swap if kind == "swap" else build_trade


async def _worker(index: int, cfg: Config, barrier: Any) -> WorkerResult:
    lanes = min(cfg.concurrency, cfg.count)
    async with AsyncClient(cfg.url, commitment=Confirmed, timeout=60) as client:
        if cfg.kind == "transfer":
            build = await _transfer_builder(client, lanes)
        else:
            build = await _program_builder(cfg.url, cfg.kind, lanes)
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=cfg.skip_preflight,
            preflight_commitment=Processed,
        )
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)

        signatures: list[Signature] = []
        rejected = 0
        first_error: str | None = None
        blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash
        sending = True

        async def refresh() -> None:
            nonlocal blockhash
            while sending:
                await asyncio.sleep(BLOCKHASH_REFRESH_SEC)
                blockhash = (await client.get_latest_blockhash(Processed)).value.blockhash

        async def lane(j: int) -> None:
            nonlocal rejected, first_error
            for k, _ in enumerate(range(j, cfg.count, lanes)):
                tx = build(j, k, blockhash)
                try:
                    signatures.append((await client.send_raw_transaction(bytes(tx), opts)).value)
                except RPCException as exc:
                    rejected += 1
                    first_error = first_error or repr(exc.args[0])[:300]

        cpu_start = process_cpu_seconds(cfg.validator_pid)
        start = time.time()
        refresher = asyncio.create_task(refresh())
        await asyncio.gather(*(lane(j) for j in range(lanes)))
        sending = False
        refresher.cancel()
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

        cpu_end = process_cpu_seconds(cfg.validator_pid)
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
            validator_cpu=(
                (cpu_start, cpu_end) if cpu_start is not None and cpu_end is not None else None
            ),
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
    deadline = time.monotonic() + cfg.max_seconds + 300
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
    cpus = [r.validator_cpu for r in rows if r.validator_cpu is not None]
    validator_cpu = (
        max(c[1] for c in cpus) - min(c[0] for c in cpus) if len(cpus) == len(rows) else None
    )
    return {
        "kind": cfg.kind,
        "instruction": INSTRUCTIONS[cfg.kind],
        "processes": processes,
        "transactions": sum(r.sent for r in rows),
        "accepted": accepted,
        "rejected": sum(r.rejected for r in rows),
        "landed": landed,
        "failed_on_chain": sum(r.failed_on_chain for r in rows),
        "send_rate": round(accepted / max(sent_done - start, 1e-9), 1),
        "tps": round(landed / max(end - start, 1e-9), 1),
        "per_process_tps_median": round(statistics.median(r.tps for r in rows), 1),
        # The validator's CPU from the first send to the last confirmation, per landed one.
        "validator_cpu_ms_per_tx": (
            round(validator_cpu * 1000 / landed, 3)
            if validator_cpu is not None and landed
            else None
        ),
        "first_error": next((r.first_error for r in rows if r.first_error), None),
    }


async def setup_program_pool(url: str) -> None:
    """The shipped spec's pool with deep SOL and USDC liquidity (idempotent setup)."""
    admin = Keypair()
    client = PerpoolClient.connect(url, admin, timeout=60)
    try:
        spec = load_spec(default_spec_path())
        await setup_pool(client, spec, localnet=True)
        ex = await Exchange.load(client, spec)
        for symbol, amount in (("SOL", "20000"), ("USDC", "3000000")):
            await faucet(ex, url, symbol, amount, admin.pubkey())
            await deposit(ex, admin, symbol, amount)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="transactions per second through JSON-RPC")
    parser.add_argument("--url", help="use a running localnet (default: start one)")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated: {', '.join(KINDS)}"
    )
    parser.add_argument("--processes", default="1,4", help="comma-separated process counts")
    parser.add_argument("--count", type=int, default=500, help="transactions per process")
    parser.add_argument(
        "--concurrency", type=int, default=32, help="lanes (requests in flight) per process"
    )
    parser.add_argument("--skip-preflight", action="store_true")
    parser.add_argument(
        "--slot-ms", type=int, help="slot length for the localnet this script starts"
    )
    parser.add_argument("--max-seconds", type=float, default=120.0, help="confirmation wait limit")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    counts = [int(p) for p in args.processes.split(",") if p.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not counts or any(not 1 <= k <= 64 for k in counts):
        parser.error("--processes: values between 1 and 64")
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds: some of {', '.join(KINDS)}")
    if not 1 <= args.count <= 100_000:
        parser.error("--count: between 1 and 100000")
    if not 1 <= args.concurrency <= 1024:
        parser.error("--concurrency: between 1 and 1024")

    net: LocalnetProcess | None = None
    try:
        if args.url:
            check_loopback(args.url)
            url = args.url
        else:
            net = LocalnetProcess.start(slot_ms=args.slot_ms)
            url = net.url
        print(
            f"url {url}; {args.count} transactions per process, {args.concurrency} lanes, "
            f"preflight {'off' if args.skip_preflight else 'on'}",
            flush=True,
        )
        if any(k in PROGRAM_KINDS for k in kinds):
            asyncio.run(setup_program_pool(url))
        rounds = []
        for kind in kinds:
            cfg = Config(
                url,
                kind,
                args.count,
                args.concurrency,
                args.skip_preflight,
                args.max_seconds,
                net.process.pid if net is not None else None,
            )
            for k in counts:
                result = run_round(cfg, k)
                rounds.append(result)
                print(
                    f"{kind:>8} {k:3d} process(es): {result['landed']}/{result['transactions']} "
                    f"landed, send rate {result['send_rate']:8.1f}/s, "
                    f"landed TPS {result['tps']:8.1f}/s"
                    + (
                        f", validator CPU {result['validator_cpu_ms_per_tx']:.2f} ms/tx"
                        if result["validator_cpu_ms_per_tx"] is not None
                        else ""
                    )
                    + (f", rejected {result['rejected']}" if result["rejected"] else "")
                    + (
                        f", failed {result['failed_on_chain']}" if result["failed_on_chain"] else ""
                    ),
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
        write_json(
            args.json,
            {
                "url": url,
                "slot_ms": args.slot_ms,
                "count": args.count,
                "concurrency": args.concurrency,
                "preflight": not args.skip_preflight,
                "rounds": rounds,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
