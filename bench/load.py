"""Load test: traders and liquidity providers acting concurrently at a target transaction rate,
with the keeper daemon running against prices that swing enough to liquidate positions.

    .venv/bin/python bench/load.py                                  # own localnet, 60 s
    .venv/bin/python bench/load.py --traders 16 --lps 4 --rate 20 --minutes 5 --seed 7
    .venv/bin/python bench/load.py --url http://127.0.0.1:8899 --keypair admin.json

Setup (not measured): a localnet (``--slot-ms``; or ``--url`` for a running one, loopback
only), the pool of the shipped spec ``client/perpool/specs/localnet.toml`` via
``perpool.pool_setup`` (the setup keypair is the admin and oracle authority), seed liquidity,
and one wallet per trader and LP funded from the localnet faucet. Then ``perpool-keeper`` is
started as a subprocess with a generated TOML config: every job on, short intervals, and one
oracle feed per custody from a generated CSV price path (``--prices wave``: each volatile
token swings ``--swing-bps`` around its start price with period ``--swing-period`` plus a
seeded random walk; stables stay at their price) or the keeper's own synthetic random walk
(``--prices synthetic``).

Load: arrivals at ``--rate`` transactions per second (Poisson, seeded) for ``--seconds`` /
``--minutes``. Each arrival picks an idle actor (one transaction in flight per actor, as a
user; with none idle the arrival is counted as skipped). A trader swaps, or picks a market
(SOL, ETH, WBTC, the ETH² payoff market; long or short) and opens a position there (random
size and leverage, shorts and payoff markets on a random stable), or closes it fully or
partly, or adds or removes collateral. An LP deposits or withdraws a random pool token. Every
action reads the actor's accounts, quotes with the program's views (price limits and minimum
outputs at ``--slippage-bps``), builds the instruction with the library, signs and sends it
(preflight on), and waits for confirmation. Latency is send → confirmed. ``--invalid-share``
sends that share of the trades with a price limit on the wrong side of the quote, which the
program must refuse (``PriceLimitExceeded``): the failure path under load.

Reported (table on stdout, JSON in ``bench/results/load.json`` or ``--json``): attempted and
landed transactions per second; latency p50/p90/p99/max overall and per action; failures by
reason (the program error's name from the logs, else the runtime's error, ``rpc: ...`` or
``timeout``) and stage (``quote``: the view failed and nothing was sent, ``preflight``,
``on_chain``); the keeper's liquidations and metrics (from its ``/metrics``); and the pool's
invariants at the end (:func:`perpool.invariants.check_pool`). Exits 1 when an invariant fails
or the keeper died, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    RESULTS_DIR,
    check_loopback,
    console_script,
    format_table,
    latency_summary,
    machine,
    metric_total,
    parse_prometheus,
    process_cpu_seconds,
    write_json,
)
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from solders.transaction_status import (
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
)
from spl.token.instructions import get_associated_token_address

from perpool import lp, pda, trade, views
from perpool.amounts import BPS, USD_DECIMALS, format_units, oracle_price
from perpool.client import PerpoolClient, ViewError
from perpool.config import ConfigError, load_keypair
from perpool.errors import PerpoolError, program_error_from
from perpool.exchange import Exchange, Token, fetch_decoded
from perpool.faucet import faucet, is_localnet
from perpool.invariants import check_pool
from perpool.localnet import LocalnetError, LocalnetProcess, airdrop, free_port
from perpool.lp_actions import deposit
from perpool.math import OraclePrice, usd_to_token_floor
from perpool.pool_setup import setup_pool
from perpool.spec import PoolSpec, default_spec_path, load_spec
from perpool.trade import LONG, SHORT, Market
from perpool.trade_actions import market_for
from perpool.wallet import receiving_account

USD = 10**USD_DECIMALS
LAMPORTS_PER_SOL = 1_000_000_000
FEED_EXPO = -8
STATUS_BATCH = 256
CONFIRM_POLL_SEC = 0.05
BLOCKHASH_REFRESH_SEC = 1.0
SEND_OPTS = TxOpts(skip_confirmation=True, skip_preflight=False, preflight_commitment=Processed)
_CONFIRMED = (TransactionConfirmationStatus.Confirmed, TransactionConfirmationStatus.Finalized)

ACTIONS = (
    "open_long",
    "open_short",
    "close_long",
    "close_short",
    "partial_close_long",
    "partial_close_short",
    "collateral_add",
    "collateral_remove",
    "swap",
    "lp_deposit",
    "lp_withdraw",
)


# ---- chain plumbing: recent blockhash, batched confirmations ----------------------------------


class Blockhashes:
    """A recent blockhash, refreshed in the background (as a wallet would cache one)."""

    def __init__(self, conn: AsyncClient) -> None:
        self.conn = conn
        self.current: Hash | None = None
        self.stopped = False

    async def get(self) -> Hash:
        if self.current is None:
            self.current = (await self.conn.get_latest_blockhash(Confirmed)).value.blockhash
        return self.current

    async def run(self) -> None:
        while not self.stopped:
            # A failed refresh is retried; senders keep the last blockhash meanwhile.
            with contextlib.suppress(Exception):
                self.current = (await self.conn.get_latest_blockhash(Confirmed)).value.blockhash
            await asyncio.sleep(BLOCKHASH_REFRESH_SEC)


@dataclass
class Landed:
    slot: int
    err: Any


class Confirmer:
    """Polls ``getSignatureStatuses`` for every pending signature in batches."""

    def __init__(self, conn: AsyncClient) -> None:
        self.conn = conn
        self.pending: dict[Signature, asyncio.Future[Landed]] = {}
        self.stopped = False

    async def wait(self, signature: Signature, timeout: float) -> Landed:
        future: asyncio.Future[Landed] = asyncio.get_running_loop().create_future()
        self.pending[signature] = future
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.pending.pop(signature, None)

    async def run(self) -> None:
        while not self.stopped:
            await asyncio.sleep(CONFIRM_POLL_SEC)
            sigs = list(self.pending)
            for start in range(0, len(sigs), STATUS_BATCH):
                chunk = sigs[start : start + STATUS_BATCH]
                try:
                    statuses = (await self.conn.get_signature_statuses(chunk)).value
                except Exception:
                    continue
                for sig, status in zip(chunk, statuses, strict=True):
                    if status is None:
                        continue
                    if status.err is None and status.confirmation_status not in _CONFIRMED:
                        continue
                    future = self.pending.get(sig)
                    if future is not None and not future.done():
                        future.set_result(Landed(status.slot, status.err))


# ---- results -----------------------------------------------------------------------------------


@dataclass
class ActionStats:
    attempted: int = 0
    """Transactions sent (a quote that failed sends nothing and is not an attempt)."""
    landed: int = 0
    rejected: int = 0
    failed_on_chain: int = 0
    timeouts: int = 0
    rpc_errors: int = 0
    quote_failures: int = 0
    latencies: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "landed": self.landed,
            "rejected": self.rejected,
            "failed_on_chain": self.failed_on_chain,
            "timeouts": self.timeouts,
            "rpc_errors": self.rpc_errors,
            "quote_failures": self.quote_failures,
            "latency": latency_summary(self.latencies),
        }


@dataclass
class Results:
    actions: dict[str, ActionStats] = field(default_factory=lambda: defaultdict(ActionStats))
    failures: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """reason → counts by ``stage:action``."""
    skipped_busy: int = 0
    arrivals: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Exceptions raised while planning an action (bugs or unreadable state), by type."""

    def fail(self, action: str, stage: str, reason: str) -> None:
        self.failures[reason][f"{stage}:{action}"] += 1

    def failures_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for reason, counts in sorted(self.failures.items(), key=lambda kv: -sum(kv[1].values())):
            stages: Counter[str] = Counter()
            actions: Counter[str] = Counter()
            for key, n in counts.items():
                stage, action = key.split(":", 1)
                stages[stage] += n
                actions[action] += n
            out[reason] = {
                "total": sum(counts.values()),
                "stages": dict(stages),
                "actions": dict(actions),
            }
        return out


def failure_reason(err: Any, logs: Sequence[str], program: Any) -> str:
    """The program error's name from the logs (Anchor's own errors included), else the
    failing program's logged error, else the runtime's error."""
    named = program_error_from(err, logs, program.idl)
    if named is not None:
        return str(named["name"])
    for line in logs:
        if line.startswith("Program log: Error: "):
            return line.removeprefix("Program log: Error: ").strip().rstrip(".")
    if isinstance(err, TransactionErrorInstructionError):
        return f"InstructionError: {err.err}"
    if isinstance(err, TransactionErrorFieldless):
        # e.g. AlreadyProcessed: the same signed bytes again (same blockhash, same arguments).
        return str(err).rsplit(".", 1)[-1]
    text = str(err) if err is not None else "unknown"
    return text if len(text) <= 80 else text[:77] + "..."


def rpc_reason(exc: BaseException) -> str:
    message = exc.args[0] if exc.args else None
    text = getattr(message, "message", None) or str(message or exc) or type(exc).__name__
    text = str(text).split("\n", 1)[0]
    return "rpc: " + (text if len(text) <= 70 else text[:67] + "...")


# ---- actors ------------------------------------------------------------------------------------


@dataclass
class Actor:
    name: str
    kind: str
    """``trader`` or ``lp``."""
    wallet: Keypair
    rng: random.Random
    busy: bool = False

    @property
    def key(self) -> Pubkey:
        return self.wallet.pubkey()


@dataclass
class Plan:
    action: str
    ixs: list[Instruction]


class QuoteFailed(Exception):
    def __init__(self, action: str, reason: str) -> None:
        super().__init__(reason)
        self.action = action
        self.reason = reason


@dataclass
class ActorState:
    positions: dict[tuple[str, str], Any]
    """(symbol, side) → decoded Position, or None."""
    prices: dict[str, OraclePrice]
    """symbol → the oracle's spot price."""
    lp_balance: int


def log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


class Load:
    def __init__(
        self,
        args: argparse.Namespace,
        url: str,
        client: PerpoolClient,
        ex: Exchange,
        actors: list[Actor],
    ) -> None:
        self.args = args
        self.url = url
        self.client = client
        self.ex = ex
        self.conn = client.connection
        self.actors = actors
        self.results = Results()
        self.blockhashes = Blockhashes(self.conn)
        self.confirmer = Confirmer(self.conn)
        self.slippage = args.slippage_bps
        self.spot = [t for t in ex.tokens if _is_spot(t)]
        self.stables = [t for t in ex.tokens if t.stable]
        self.markets = [(t, side) for t in ex.tokens if not t.stable for side in (LONG, SHORT)]
        self.coder = client.program.coder.accounts

    # ---- state of one actor ---------------------------------------------------------------

    async def read_state(self, actor: Actor) -> ActorState:
        position_keys = [
            pda.position(actor.key, self.ex.pool_key, token.custody, side)
            for token, side in self.markets
        ]
        oracle_keys = [t.oracle for t in self.ex.tokens]
        lp_account = get_associated_token_address(actor.key, self.ex.lp_mint)
        keys = [*position_keys, *oracle_keys, lp_account]
        infos = (await self.conn.get_multiple_accounts(keys, Confirmed)).value
        positions: dict[tuple[str, str], Any] = {}
        for (token, side), info in zip(self.markets, infos[: len(self.markets)], strict=True):
            positions[(token.symbol, side)] = (
                None if info is None else self.coder.decode(bytes(info.data))
            )
        prices: dict[str, OraclePrice] = {}
        oracle_infos = infos[len(self.markets) : len(self.markets) + len(oracle_keys)]
        for token, info in zip(self.ex.tokens, oracle_infos, strict=True):
            if info is not None:
                oracle = self.coder.decode(bytes(info.data))
                prices[token.symbol] = OraclePrice(int(oracle.price), int(oracle.expo))
        lp_info = infos[-1]
        lp_balance = 0 if lp_info is None else int.from_bytes(bytes(lp_info.data)[64:72], "little")
        return ActorState(positions, prices, lp_balance)

    def token_by_custody(self, custody: Pubkey) -> Token:
        return next(t for t in self.ex.tokens if t.custody == custody)

    def tokens_worth(self, state: ActorState, token: Token, usd: int) -> int:
        return usd_to_token_floor(usd, token.decimals, state.prices[token.symbol])

    async def quote(self, action: str, call: Any) -> Any:
        try:
            return await call
        except ViewError as exc:
            raise QuoteFailed(
                action, failure_reason(exc.err, exc.logs, self.client.program)
            ) from exc

    # ---- what a trader or an LP does ------------------------------------------------------

    async def plan(self, actor: Actor, state: ActorState) -> Plan:
        rng = actor.rng
        if actor.kind == "lp":
            if state.lp_balance > 0 and rng.random() < 0.4:
                return await self.plan_lp_withdraw(actor, state)
            return await self.plan_lp_deposit(actor, state)
        # Drawn first, so each trader's sequence of invalid actions depends on the seed only.
        invalid = rng.random() < self.args.invalid_share
        if rng.random() < 0.15 and not invalid:
            return await self.plan_swap(actor, state)
        token, side = rng.choice(self.markets)
        position = state.positions[(token.symbol, side)]
        if position is None:
            return await self.plan_open(actor, state, token, side, invalid=invalid)
        market = Market(
            self.ex.pool_name,
            token.mint,
            self.token_by_custody(position.collateral_custody).mint,
            side,
        )
        r = rng.random()
        if r < 0.30 or invalid:
            return await self.plan_close(actor, market, BPS, invalid=invalid)
        if r < 0.55:
            return await self.plan_close(actor, market, rng.randrange(1_000, 9_001, 500))
        if r < 0.80:
            return self.plan_collateral_add(actor, state, market, position)
        return self.plan_collateral_remove(actor, market, position)

    def limit(self, price: int, up: bool, invalid: bool) -> int:
        """A price limit ``--slippage-bps`` beyond the quote (above it when ``up``); an invalid
        one 1% on the wrong side, which the program must refuse."""
        if invalid:
            up = not up
            bps = 100
        else:
            bps = self.slippage
        return -(-price * (BPS + bps) // BPS) if up else price * (BPS - bps) // BPS

    async def plan_open(
        self, actor: Actor, state: ActorState, token: Token, side: str, *, invalid: bool = False
    ) -> Plan:
        rng = actor.rng
        action = f"open_{side}"
        stable = rng.choice(self.stables).symbol
        market = market_for(
            self.ex, token, side, None if side == LONG and _is_spot(token) else stable
        )
        collateral = next(t for t in self.ex.tokens if t.mint == market.collateral_mint)
        size = log_uniform(rng, self.args.min_size_usd * USD, self.args.max_size_usd * USD)
        max_leverage = int(token.account.pricing.max_initial_leverage)
        leverage = rng.randrange(15_000, max(15_001, max_leverage * 9 // 10))
        amount = self.tokens_worth(state, collateral, size * BPS // leverage)
        quote = await self.quote(
            action, views.entry_price_and_fee(self.client, market, amount, size)
        )
        limit = self.limit(int(quote.entry_price), side == LONG, invalid)
        ix = trade.open_position_ix(
            self.client,
            actor.key,
            market,
            collateral_amount=amount,
            size_usd=size,
            funding_account=get_associated_token_address(actor.key, collateral.mint),
            price_limit=limit,
        )
        return Plan(action, [ix])

    async def plan_close(
        self, actor: Actor, market: Market, close_bps: int, *, invalid: bool = False
    ) -> Plan:
        action = ("close_" if close_bps == BPS else "partial_close_") + market.side
        quote = await self.quote(
            action, views.exit_price_and_fee(self.client, market, actor.key, close_bps)
        )
        limit = self.limit(int(quote.exit_price), market.side == SHORT, invalid)
        receiving, create = receiving_account(actor.key, actor.key, market.collateral_mint)
        ix = trade.close_position_ix(
            self.client,
            actor.key,
            market,
            receiving_account=receiving,
            close_bps=close_bps,
            price_limit=limit,
        )
        return Plan(action, [create, ix])

    def plan_collateral_add(
        self, actor: Actor, state: ActorState, market: Market, position: Any
    ) -> Plan:
        collateral = next(t for t in self.ex.tokens if t.mint == market.collateral_mint)
        usd = int(position.collateral_usd) * actor.rng.randrange(10, 51) // 100
        amount = max(1, self.tokens_worth(state, collateral, usd))
        ix = trade.add_collateral_ix(
            self.client,
            actor.key,
            market,
            amount,
            funding_account=get_associated_token_address(actor.key, collateral.mint),
        )
        return Plan("collateral_add", [ix])

    def plan_collateral_remove(self, actor: Actor, market: Market, position: Any) -> Plan:
        usd = max(1, int(position.collateral_usd) * actor.rng.randrange(5, 31) // 100)
        ix = trade.remove_collateral_ix(
            self.client,
            actor.key,
            market,
            usd,
            receiving_account=get_associated_token_address(actor.key, market.collateral_mint),
        )
        return Plan("collateral_remove", [ix])

    async def plan_swap(self, actor: Actor, state: ActorState) -> Plan:
        src, dst = actor.rng.sample(self.spot, 2)
        usd = log_uniform(actor.rng, 10 * USD, self.args.max_swap_usd * USD)
        amount = max(1, self.tokens_worth(state, src, usd))
        quote = await self.quote(
            "swap",
            views.swap_amount_and_fees(self.client, self.ex.pool_name, src.mint, dst.mint, amount),
        )
        ix = trade.swap_ix(
            self.client,
            actor.key,
            self.ex.pool_name,
            src.mint,
            dst.mint,
            amount,
            funding_account=get_associated_token_address(actor.key, src.mint),
            receiving_account=get_associated_token_address(actor.key, dst.mint),
            min_amount_out=int(quote.amount_out) * (BPS - self.slippage) // BPS,
        )
        return Plan("swap", [ix])

    async def plan_lp_deposit(self, actor: Actor, state: ActorState) -> Plan:
        token = actor.rng.choice(self.spot)
        usd = log_uniform(actor.rng, 1_000 * USD, self.args.max_deposit_usd * USD)
        amount = max(1, self.tokens_worth(state, token, usd))
        quote = await self.quote(
            "lp_deposit",
            views.add_liquidity_amount_and_fee(self.client, self.ex.pool_name, token.mint, amount),
        )
        lp_account, create = receiving_account(actor.key, actor.key, self.ex.lp_mint)
        ix = await lp.add_liquidity_ix(
            self.client,
            actor.key,
            self.ex.pool_name,
            token.mint,
            amount,
            funding_account=get_associated_token_address(actor.key, token.mint),
            lp_token_account=lp_account,
            min_lp_amount_out=int(quote.lp_amount) * (BPS - self.slippage) // BPS,
        )
        return Plan("lp_deposit", [create, ix])

    async def plan_lp_withdraw(self, actor: Actor, state: ActorState) -> Plan:
        token = actor.rng.choice(self.spot)
        lp_amount = max(1, state.lp_balance * actor.rng.randrange(5, 26) // 100)
        quote = await self.quote(
            "lp_withdraw",
            views.remove_liquidity_amount_and_fee(
                self.client, self.ex.pool_name, token.mint, lp_amount
            ),
        )
        ix = await lp.remove_liquidity_ix(
            self.client,
            actor.key,
            self.ex.pool_name,
            token.mint,
            lp_amount,
            receiving_account=get_associated_token_address(actor.key, token.mint),
            lp_token_account=get_associated_token_address(actor.key, self.ex.lp_mint),
            min_amount_out=int(quote.amount_out) * (BPS - self.slippage) // BPS,
        )
        return Plan("lp_withdraw", [ix])

    # ---- one action: read, quote, build, send, confirm -----------------------------------

    async def act(self, actor: Actor) -> None:
        try:
            try:
                plan = await self.plan(actor, await self.read_state(actor))
            except QuoteFailed as exc:
                self.results.actions[exc.action].quote_failures += 1
                self.results.fail(exc.action, "quote", exc.reason)
                return
            except (RPCException, SolanaRpcException, httpx.HTTPError, OSError) as exc:
                self.results.errors[rpc_reason(exc)] += 1
                return
            await self.send(actor, plan)
        except Exception as exc:  # a bug in planning must not stop the run; it is reported
            self.results.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
        finally:
            actor.busy = False

    async def send(self, actor: Actor, plan: Plan) -> None:
        stats = self.results.actions[plan.action]
        tx = Transaction([actor.wallet], Message(plan.ixs, actor.key), await self.blockhashes.get())
        stats.attempted += 1
        started = time.perf_counter()
        try:
            signature = (await self.conn.send_raw_transaction(bytes(tx), SEND_OPTS)).value
        except RPCException as exc:
            message = exc.args[0] if exc.args else None
            data = getattr(message, "data", None)
            err = getattr(data, "err", None)
            if err is not None:
                stats.rejected += 1
                logs = list(getattr(data, "logs", None) or [])
                reason = failure_reason(err, logs, self.client.program)
                self.results.fail(plan.action, "preflight", reason)
            else:
                stats.rpc_errors += 1
                self.results.fail(plan.action, "rpc", rpc_reason(exc))
            return
        except (SolanaRpcException, httpx.HTTPError, OSError) as exc:
            stats.rpc_errors += 1
            self.results.fail(plan.action, "rpc", rpc_reason(exc))
            return
        try:
            landed = await self.confirmer.wait(signature, self.args.confirm_timeout)
        except TimeoutError:
            stats.timeouts += 1
            self.results.fail(plan.action, "confirm", "timeout")
            return
        if landed.err is None:
            stats.landed += 1
            stats.latencies.append(time.perf_counter() - started)
            return
        stats.failed_on_chain += 1
        landed_logs: list[str] = []
        try:
            tx_info = await self.conn.get_transaction(
                signature, commitment=Confirmed, max_supported_transaction_version=0
            )
            meta = tx_info.value.transaction.meta if tx_info.value is not None else None
            landed_logs = list(meta.log_messages or []) if meta is not None else []
        except Exception:
            pass
        self.results.fail(
            plan.action, "on_chain", failure_reason(landed.err, landed_logs, self.client.program)
        )

    # ---- the arrival process --------------------------------------------------------------

    async def run(self, seconds: float) -> tuple[float, float]:
        """Drives arrivals for ``seconds``; returns (load window, elapsed including drain)."""
        background = [
            asyncio.create_task(self.blockhashes.run()),
            asyncio.create_task(self.confirmer.run()),
        ]
        await self.blockhashes.get()
        rng = random.Random(self.args.seed)
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        next_at = started
        end = started + seconds
        try:
            while True:
                if self.args.arrivals == "uniform":
                    next_at += 1 / self.args.rate
                else:
                    next_at += rng.expovariate(self.args.rate)
                if next_at >= end:
                    break
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.results.arrivals += 1
                idle = [a for a in self.actors if not a.busy]
                if not idle:
                    self.results.skipped_busy += 1
                    continue
                actor = rng.choice(idle)
                actor.busy = True
                task = asyncio.create_task(self.act(actor))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            window = time.monotonic() - started
            if tasks:
                await asyncio.wait(set(tasks), timeout=self.args.confirm_timeout + 30)
            return window, time.monotonic() - started
        finally:
            self.blockhashes.stopped = self.confirmer.stopped = True
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)


def _is_spot(token: Token) -> bool:
    return type(token.account.payoff.kind).__name__.lower() == "spot"


# ---- setup -------------------------------------------------------------------------------------


def human_tokens(token: Token, price: OraclePrice, usd: int) -> str:
    return format_units(max(1, usd_to_token_floor(usd, token.decimals, price)), token.decimals)


async def oracle_prices(client: PerpoolClient, ex: Exchange) -> dict[str, OraclePrice]:
    infos = (
        await client.connection.get_multiple_accounts([t.oracle for t in ex.tokens], Confirmed)
    ).value
    out: dict[str, OraclePrice] = {}
    for token, info in zip(ex.tokens, infos, strict=True):
        if info is None:
            raise PerpoolError(f"{token.symbol}: oracle {token.oracle} has no price")
        oracle = client.program.coder.accounts.decode(bytes(info.data))
        out[token.symbol] = OraclePrice(int(oracle.price), int(oracle.expo))
    return out


async def fund(
    ex: Exchange, url: str, owner: Pubkey, usd_each: int, prices: dict[str, OraclePrice]
) -> None:
    """Test tokens worth ``usd_each`` of every token pool that holds tokens, and 100 SOL."""
    first = True
    for token in ex.tokens:
        if not _is_spot(token):
            continue
        amount = human_tokens(token, prices[token.symbol], usd_each)
        await faucet(ex, url, token.symbol, amount, owner, sol_text="100" if first else None)
        first = False


async def prepare(
    args: argparse.Namespace, url: str, admin: Keypair, spec: PoolSpec
) -> tuple[PerpoolClient, Exchange, list[Actor], dict[str, Any]]:
    client = PerpoolClient.connect(url, admin, timeout=60)
    timings: dict[str, Any] = {}
    started = time.perf_counter()
    steps = await setup_pool(client, spec, localnet=True)
    timings["setup_pool_s"] = round(time.perf_counter() - started, 2)
    timings["setup_created"] = sum(1 for s in steps if s.status == "created")
    ex = await Exchange.load(client, spec)
    prices = await oracle_prices(client, ex)

    started = time.perf_counter()
    # Seed liquidity from the admin, so traders have a pool from the first second.
    await fund(ex, url, admin.pubkey(), args.pool_usd * USD * 2, prices)
    for token in ex.tokens:
        if _is_spot(token):
            amount = human_tokens(token, prices[token.symbol], args.pool_usd * USD)
            await deposit(ex, admin, token.symbol, amount)
    timings["seed_liquidity_s"] = round(time.perf_counter() - started, 2)

    actors = [
        Actor(f"trader{i}", "trader", Keypair(), random.Random(args.seed * 1_000_003 + i))
        for i in range(args.traders)
    ] + [
        Actor(f"lp{i}", "lp", Keypair(), random.Random(args.seed * 1_000_003 + 500_000 + i))
        for i in range(args.lps)
    ]
    started = time.perf_counter()
    gate = asyncio.Semaphore(8)

    async def fund_actor(actor: Actor) -> None:
        usd = args.trader_usd if actor.kind == "trader" else args.lp_usd
        async with gate:
            await fund(ex, url, actor.key, usd * USD, prices)

    await asyncio.gather(*(fund_actor(a) for a in actors))
    timings["fund_wallets_s"] = round(time.perf_counter() - started, 2)
    return client, ex, actors, timings


# ---- the keeper --------------------------------------------------------------------------------


def write_keypair(path: Path, keypair: Keypair) -> Path:
    path.write_text(json.dumps(list(bytes(keypair))))
    path.chmod(0o600)
    return path


def wave_csv(
    path: Path, start: OraclePrice, rows: int, rng: random.Random, args: argparse.Namespace
) -> None:
    """``t,price`` every second: a sine swing of ``--swing-bps`` around the start price plus a
    random walk of ``--volatility-bps`` per second (log scale), at the feed's exponent."""
    mantissa = start.scale_to_exponent_floor(FEED_EXPO).price
    direction = rng.choice((-1, 1))
    walk = 0.0
    lines = ["t,price"]
    for t in range(rows):
        walk += rng.gauss(0.0, args.volatility_bps / BPS)
        swing = direction * args.swing_bps / BPS * math.sin(2 * math.pi * t / args.swing_period)
        lines.append(
            f"{t},{oracle_price(max(1, round(mantissa * math.exp(swing + walk))), FEED_EXPO)}"
        )
    path.write_text("\n".join(lines) + "\n")


def keeper_toml(
    args: argparse.Namespace,
    workdir: Path,
    url: str,
    ex: Exchange,
    keeper: Keypair,
    oracle_authority: Keypair | None,
    prices: dict[str, OraclePrice],
    port: int,
    seconds: float,
) -> str:
    keeper_path = write_keypair(workdir / "keeper.json", keeper)
    lines = [
        "[keeper]",
        f'keypair = "{keeper_path}"',
        f'pools = ["{ex.pool_name}"]',
        "drain_timeout_sec = 15",
        "[rpc]",
        f'urls = ["{url}"]',
        "backoff_base_sec = 0.05",
        "[http]",
        f"port = {port}",
        "[health]",
        "interval_sec = 1",
        "[jobs.accrual]",
        "interval_sec = 5",
        "[jobs.liquidation]",
        "interval_sec = 1",
        "[jobs.aum]",
        "interval_sec = 5",
        "[jobs.oracle]",
    ]
    if oracle_authority is None:
        lines.append("enabled = false")
        return "\n".join(lines) + "\n"
    authority_path = write_keypair(workdir / "oracle-authority.json", oracle_authority)
    lines += [
        "enabled = true",
        "interval_sec = 0.5",
        "deviation_bps = 5",
        "heartbeat_sec = 20",
        f'authority_keypair = "{authority_path}"',
    ]
    rows = int(seconds) + 900
    rng = random.Random(args.seed)
    for token in ex.tokens:
        price = prices[token.symbol].scale_to_exponent_floor(FEED_EXPO)
        # A stable's replay has one row and stays at it; its age counts from the keeper's start.
        max_age = rows if token.stable else 30
        feed = [
            "[[jobs.oracle.feeds]]",
            f'pool = "{ex.pool_name}"',
            f'mint = "{token.mint}"',
            f"expo = {FEED_EXPO}",
            f"max_source_age_sec = {max_age}",
        ]
        if args.prices == "synthetic" and not token.stable:
            feed += [
                'source = "synthetic"',
                f"seed = {rng.randrange(1, 2**31)}",
                f"start_price = {oracle_price(price.price, FEED_EXPO)}",
                f"volatility_bps = {args.volatility_bps}",
            ]
        else:
            csv = workdir / f"{token.symbol}.csv"
            if token.stable:
                csv.write_text(f"t,price\n0,{oracle_price(price.price, FEED_EXPO)}\n")
            else:
                wave_csv(csv, price, rows, rng, args)
            feed += ['source = "csv"', f'path = "{csv}"']
        lines += feed
    return "\n".join(lines) + "\n"


class KeeperProcess:
    def __init__(self, config: Path, log: Path, port: int) -> None:
        self.log = log
        self.base = f"http://127.0.0.1:{port}"
        with log.open("ab") as err:
            self.process = subprocess.Popen(
                [*console_script("perpool-keeper"), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def tail(self, limit: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    async def metrics(self) -> str | None:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                return (await http.get(f"{self.base}/metrics")).text
        except httpx.HTTPError:
            return None

    async def health(self) -> Any:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                resp = await http.get(f"{self.base}/health")
                return {"status": resp.status_code, "report": resp.json()}
        except (httpx.HTTPError, ValueError):
            return None

    async def wait_started(self, oracle: bool, timeout: float = 60.0) -> None:
        """Until the keeper serves metrics and (with price feeds) has posted prices."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalnetError(f"perpool-keeper exited:\n{self.tail()}")
            text = await self.metrics()
            if text is not None:
                samples = parse_prometheus(text)
                ticks = metric_total(samples, "perpool_keeper_job_ticks_total", job="liquidation")
                posts = metric_total(samples, "perpool_keeper_oracle_posts_total")
                if ticks > 0 and (posts > 0 or not oracle):
                    return
            await asyncio.sleep(0.2)
        raise LocalnetError(f"perpool-keeper did not start within {timeout:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def liquidations_logged(self) -> int:
        count = 0
        for line in self.tail(limit=50_000_000).splitlines():
            try:
                if json.loads(line).get("msg") == "position liquidated":
                    count += 1
            except ValueError:
                continue
        return count


def keeper_summary(text: str | None, feed_names: dict[str, str]) -> dict[str, Any]:
    """The keeper's metrics: a digest, and every sample but histogram buckets."""
    if text is None:
        return {"available": False}
    samples = parse_prometheus(text)
    p = "perpool_keeper_"

    def total(name: str, **labels: str) -> float:
        return metric_total(samples, p + name, **labels)

    def mean(name: str) -> float | None:
        count = total(f"{name}_count")
        return round(total(f"{name}_sum") / count, 4) if count else None

    metrics = {
        (
            name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}")
            if labels
            else name
        ): value
        for name, labels, value in samples
        if name.startswith(p) and not name.endswith(("_bucket", "_created"))
    }
    return {
        "available": True,
        "liquidations": {
            "long": int(total("liquidations_total", side="long")),
            "short": int(total("liquidations_total", side="short")),
            "total": int(total("liquidations_total")),
        },
        "tx_sent": int(total("tx_sent_total")),
        "tx_landed": int(total("tx_landed_total")),
        "tx_failed": int(total("tx_failed_total")),
        "oracle_posts": int(total("oracle_posts_total")),
        "oracle_posts_by_feed": {
            name: int(total("oracle_posts_total", feed=label)) for label, name in feed_names.items()
        },
        "job_ticks": {
            job: int(total("job_ticks_total", job=job))
            for job in ("oracle", "accrual", "liquidation", "aum")
        },
        "job_errors": int(total("job_ticks_total", outcome="error")),
        "evaluation_mean_s": mean("evaluation_seconds"),
        "liquidation_lag_slots_mean": mean("liquidation_lag_slots"),
        "liquidation_lag_seconds_mean": mean("liquidation_lag_seconds"),
        "metrics": metrics,
    }


# ---- report ------------------------------------------------------------------------------------


def build_report(
    args: argparse.Namespace,
    url: str,
    results: Results,
    window: float,
    elapsed: float,
    timings: dict[str, Any],
) -> dict[str, Any]:
    actions = {name: results.actions[name] for name in ACTIONS if name in results.actions}
    all_latencies = [lat for s in actions.values() for lat in s.latencies]
    attempted = sum(s.attempted for s in actions.values())
    landed = sum(s.landed for s in actions.values())
    return {
        "config": {
            "url": url,
            "traders": args.traders,
            "lps": args.lps,
            "target_rate": args.rate,
            "seconds": args.seconds,
            "seed": args.seed,
            "slot_ms": args.slot_ms,
            "arrivals": args.arrivals,
            "prices": args.prices,
            "swing_bps": args.swing_bps,
            "swing_period_s": args.swing_period,
            "volatility_bps": args.volatility_bps,
            "slippage_bps": args.slippage_bps,
            "invalid_share": args.invalid_share,
        },
        "machine": machine(),
        "setup": timings,
        "window_s": round(window, 2),
        "elapsed_s": round(elapsed, 2),
        "throughput": {
            "arrivals": results.arrivals,
            "skipped_busy": results.skipped_busy,
            "attempted": attempted,
            "attempted_per_s": round(attempted / window, 2) if window else 0,
            "landed": landed,
            "landed_per_s": round(landed / window, 2) if window else 0,
            "rejected": sum(s.rejected for s in actions.values()),
            "failed_on_chain": sum(s.failed_on_chain for s in actions.values()),
            "timeouts": sum(s.timeouts for s in actions.values()),
            "rpc_errors": sum(s.rpc_errors for s in actions.values()),
            "quote_failures": sum(s.quote_failures for s in actions.values()),
        },
        "latency": {
            "overall": latency_summary(all_latencies),
            "per_action": {name: latency_summary(s.latencies) for name, s in actions.items()},
        },
        "actions": {name: s.to_json() for name, s in actions.items()},
        "failures": results.failures_json(),
        "client_errors": dict(results.errors),
    }


def print_report(report: dict[str, Any]) -> None:
    cfg, tp = report["config"], report["throughput"]
    print(
        f"\nload: {cfg['traders']} traders, {cfg['lps']} LPs, target {cfg['target_rate']} tx/s "
        f"for {report['window_s']} s, seed {cfg['seed']}, slots "
        f"{cfg['slot_ms'] or 'default'} ms, prices {cfg['prices']}"
    )
    print(
        f"attempted {tp['attempted']} ({tp['attempted_per_s']}/s), landed {tp['landed']} "
        f"({tp['landed_per_s']}/s); rejected in preflight {tp['rejected']}, failed on chain "
        f"{tp['failed_on_chain']}, timeouts {tp['timeouts']}, RPC errors {tp['rpc_errors']}, "
        f"quotes failed {tp['quote_failures']}, arrivals skipped (all actors busy) "
        f"{tp['skipped_busy']}\n"
    )
    rows = []
    for name, stats in report["actions"].items():
        lat = stats["latency"]
        failed = (
            stats["rejected"] + stats["failed_on_chain"] + stats["timeouts"] + stats["rpc_errors"]
        )
        rows.append(
            [
                name,
                stats["attempted"],
                stats["landed"],
                failed,
                stats["quote_failures"],
                *[lat.get(k, "-") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")],
            ]
        )
    lat = report["latency"]["overall"]
    rows.append(
        [
            "all",
            tp["attempted"],
            tp["landed"],
            tp["rejected"] + tp["failed_on_chain"] + tp["timeouts"] + tp["rpc_errors"],
            tp["quote_failures"],
            *[lat.get(k, "-") for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")],
        ]
    )
    headers = ["action", "sent", "landed", "failed", "no quote", "p50 ms", "p90 ms", "p99 ms"]
    print(format_table([*headers, "max ms"], rows))
    if report["failures"]:
        print("\nfailures by reason:")
        rows = [
            [
                reason,
                f["total"],
                ", ".join(f"{k} {v}" for k, v in f["stages"].items()),
                ", ".join(f"{k} {v}" for k, v in sorted(f["actions"].items())),
            ]
            for reason, f in report["failures"].items()
        ]
        print(format_table(["reason", "n", "stage", "actions"], rows))
    if report["client_errors"]:
        print(f"\nclient errors: {report['client_errors']}")
    keeper = report.get("keeper", {})
    if keeper.get("available"):
        liq = keeper["liquidations"]
        print(
            f"\nkeeper: liquidations {liq['total']} (long {liq['long']}, short {liq['short']}), "
            f"oracle posts {keeper['oracle_posts']}, tx sent {keeper['tx_sent']} / landed "
            f"{keeper['tx_landed']} / failed {keeper['tx_failed']}, job ticks "
            f"{keeper['job_ticks']}, job errors {keeper['job_errors']}, exit code "
            f"{keeper.get('exit_code')}"
        )
    if report.get("cpu"):
        print(
            "CPU during the load (cores): "
            + ", ".join(f"{name} {c['cores']}" for name, c in report["cpu"].items())
        )
    inv = report.get("invariants")
    if inv is not None:
        if inv["ok"]:
            print(
                f"invariants: ok ({len(inv['custodies'])} custodies, {inv['positions']} open "
                "positions)"
            )
        else:
            print("invariants: FAILED")
            for v in inv["violations"]:
                print(
                    f"  {v['custody']}: {v['check']}: expected {v['expected']}, found {v['actual']}"
                )


# ---- main --------------------------------------------------------------------------------------


def cpu_snapshot(pids: dict[str, int | None]) -> dict[str, float | None]:
    out: dict[str, float | None] = {"load generator": time.process_time()}
    out |= {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    return out


async def run(
    args: argparse.Namespace, url: str, admin: Keypair, validator_pid: int | None
) -> dict[str, Any]:
    spec = load_spec(args.config or default_spec_path())
    client, ex, actors, timings = await prepare(args, url, admin, spec)
    workdir = Path(tempfile.mkdtemp(prefix="perpool-load-"))
    keeper: KeeperProcess | None = None
    try:
        config_account = await fetch_decoded(client, "Perpool", pda.perpool())
        authority = (
            admin
            if config_account is not None and config_account.oracle_authority == admin.pubkey()
            else None
        )
        if authority is None:
            print(
                "warning: the oracle authority is not the setup keypair (--keypair): the keeper "
                "runs without price feeds, prices stay where they are",
                file=sys.stderr,
            )
        keeper_wallet = Keypair()
        await airdrop(client.connection, keeper_wallet.pubkey(), 100 * LAMPORTS_PER_SOL)
        port = free_port()
        config = workdir / "keeper.toml"
        prices = await oracle_prices(client, ex)
        config.write_text(
            keeper_toml(
                args, workdir, url, ex, keeper_wallet, authority, prices, port, args.seconds
            )
        )
        started = time.perf_counter()
        keeper = KeeperProcess(config, workdir / "keeper.log", port)
        await keeper.wait_started(authority is not None)
        timings["keeper_start_s"] = round(time.perf_counter() - started, 2)

        print(
            f"load: {len(actors)} actors, {args.rate} tx/s for {args.seconds:g} s "
            f"(setup {timings})",
            flush=True,
        )
        load = Load(args, url, client, ex, actors)
        pids = {"validator": validator_pid, "keeper": keeper.process.pid}
        cpu_before = cpu_snapshot(pids)
        window, elapsed = await load.run(args.seconds)
        cpu_after = cpu_snapshot(pids)
        report = build_report(args, url, load.results, window, elapsed, timings)
        # CPU seconds each process used during the load (drain included), and the share of
        # one core that is over the elapsed time.
        report["cpu"] = {
            name: {
                "seconds": round(after - before, 2),
                "cores": round((after - before) / elapsed, 2),
            }
            for name, after in cpu_after.items()
            if after is not None and (before := cpu_before.get(name)) is not None
        }
        await asyncio.sleep(1.0)  # the keeper's last ticks land
        metrics_text = await keeper.metrics()
        health = await keeper.health()
        keeper_alive = keeper.process.poll() is None
        code = keeper.stop()
        feed_names = {f"{ex.pool_name}:{t.mint}": t.symbol for t in ex.tokens}
        report["keeper"] = keeper_summary(metrics_text, feed_names) | {
            "alive_at_end": keeper_alive,
            "exit_code": code,
            "health": health,
            "liquidations_logged": keeper.liquidations_logged(),
            "price_feeds": authority is not None,
        }
        if not keeper_alive or code != 0:
            report["keeper"]["log_tail"] = keeper.tail()
        names = {t.mint: t.symbol for t in ex.tokens}
        report["invariants"] = (await check_pool(client, ex.pool_name, names=names)).to_json()
        return report
    finally:
        if keeper is not None:
            keeper.stop()
        await client.close()
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"keeper config and log kept in {workdir}", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Perpool load test with the keeper running",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--traders", type=int, default=8, help="trader wallets")
    p.add_argument("--lps", type=int, default=2, help="liquidity provider wallets")
    p.add_argument("--rate", type=float, default=10.0, help="target transactions per second")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="length of the load phase")
    length.add_argument("--seconds", type=float, help="length of the load phase (default 60)")
    p.add_argument("--seed", type=int, default=1, help="actions, sizes and price paths")
    p.add_argument("--url", help="a running localnet (loopback); default: start one")
    p.add_argument(
        "--keypair", type=Path, help="setup keypair (admin and oracle authority); default: new"
    )
    p.add_argument("--config", type=Path, help="pool spec (default: the shipped localnet spec)")
    p.add_argument("--slot-ms", type=int, help="slot length of the localnet started here")
    p.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    p.add_argument("--prices", choices=("wave", "synthetic"), default="wave")
    p.add_argument("--swing-bps", type=float, default=300.0, help="wave: amplitude")
    p.add_argument("--swing-period", type=float, default=40.0, help="wave: period in seconds")
    p.add_argument(
        "--volatility-bps", type=float, default=10.0, help="random walk per second (per tick)"
    )
    p.add_argument("--slippage-bps", type=int, default=100, help="price limits and minimum outs")
    p.add_argument(
        "--invalid-share",
        type=float,
        default=0.0,
        help="share of trader actions sent with a price limit the program must refuse",
    )
    p.add_argument("--min-size-usd", type=int, default=20, help="smallest position")
    p.add_argument("--max-size-usd", type=int, default=20_000, help="largest position")
    p.add_argument("--max-swap-usd", type=int, default=5_000, help="largest swap")
    p.add_argument("--max-deposit-usd", type=int, default=50_000, help="largest LP deposit")
    p.add_argument("--pool-usd", type=int, default=1_000_000, help="seed liquidity per token")
    p.add_argument("--trader-usd", type=int, default=500_000, help="trader funds per token")
    p.add_argument("--lp-usd", type=int, default=1_000_000, help="LP funds per token")
    p.add_argument("--confirm-timeout", type=float, default=30.0, help="seconds per transaction")
    p.add_argument("--json", type=Path, default=RESULTS_DIR / "load.json", help="JSON output")
    p.add_argument("--keep-workdir", action="store_true", help="keep the keeper config and log")
    args = p.parse_args(argv)
    args.seconds = args.minutes * 60 if args.minutes is not None else (args.seconds or 60.0)
    if args.traders < 0 or args.lps < 0 or args.traders + args.lps == 0:
        p.error("--traders and --lps: at least one actor")
    if not 0 < args.rate <= 10_000:
        p.error("--rate: between 0 and 10000")
    if args.seconds <= 0:
        p.error("--seconds/--minutes must be positive")
    if not 0 <= args.invalid_share <= 1:
        p.error("--invalid-share: between 0 and 1")
    if not 0 <= args.slippage_bps < BPS:
        p.error("--slippage-bps: 0 to 9999")
    if not 0 < args.min_size_usd <= args.max_size_usd:
        p.error("--min-size-usd must be positive and at most --max-size-usd")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    net: LocalnetProcess | None = None
    try:
        if args.url:
            check_loopback(args.url)
            url = args.url
            if not asyncio.run(is_localnet(url)):
                print(f"error: {url} is not a perpool localnet", file=sys.stderr)
                return 1
        else:
            net = LocalnetProcess.start(slot_ms=args.slot_ms)
            url = net.url
        try:
            admin = load_keypair(args.keypair) if args.keypair else Keypair()
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        report = asyncio.run(run(args, url, admin, net.process.pid if net is not None else None))
    except (LocalnetError, PerpoolError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if net is not None:
            net.stop()
    write_json(args.json, report)
    print_report(report)
    print(f"\nJSON: {args.json}")
    keeper_ok = report["keeper"].get("alive_at_end", False) and report["keeper"]["exit_code"] == 0
    if not report["invariants"]["ok"] or not keeper_ok:
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
