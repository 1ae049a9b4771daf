"""Auto-close / liquidation: load every position of each pool, evaluate them with the
program's own integer math (:mod:`perpool_keeper.evaluate`), and liquidate the liquidatable
ones, most urgent first — longs and shorts, token and payoff markets alike.

Each liquidation is simulated before it is sent (the program re-checks everything: a
position that recovered or was already closed is a ``rejected`` outcome, not an error). The
transaction creates the keeper's and the owner's collateral token accounts when missing
(idempotent), and when a custody's oracle is within ``stale_margin_sec`` of its maximum age and
the oracle job has a fresh quote, the price update goes first in the same transaction. A token
account the mint's freeze authority froze cannot receive anything: when the owner's (or the
keeper's) associated account is frozen, the remainder goes to a token account of the same owner
at an address derived from the keeper's key and the pair (created in the transaction, its rent
paid by the keeper), so a frozen account never keeps a position from being liquidated.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from solana.rpc.commitment import Confirmed
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountWithSeedParams, create_account_with_seed
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeAccountParams,
    create_idempotent_associated_token_account,
    get_associated_token_address,
    initialize_account,
)

from perpool import quotes as q
from perpool.trade import LONG, SHORT, Market, liquidate_ix
from perpool_keeper.chain import (
    CustodyInfo,
    PoolSnapshot,
    clock,
    load_pool,
    load_positions,
    multiple_accounts,
)
from perpool_keeper.config import LiquidationJobConfig
from perpool_keeper.evaluate import Candidate, evaluate
from perpool_keeper.jobs.base import Context, tx_summary
from perpool_keeper.logs import log

if TYPE_CHECKING:
    from perpool_keeper.jobs.oracle import OracleJob

logger = logging.getLogger("perpool_keeper.liquidation")


class LiquidationJob:
    name = "liquidation"

    def __init__(
        self, ctx: Context, config: LiquidationJobConfig, oracle: OracleJob | None = None
    ) -> None:
        self.ctx = ctx
        self.config = config
        self.interval_sec = config.interval_sec
        self.oracle = oracle
        self.first_seen: dict[Pubkey, tuple[int, float]] = {}
        """Position → (slot, monotonic time) it was first seen liquidatable (for the lag)."""

    async def tick(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "positions": 0,
            "liquidatable": 0,
            "unevaluated": 0,
            "results": [],
        }
        for pool_name in self.ctx.pools:
            try:
                await self._tick_pool(pool_name, summary)
            except Exception as exc:
                log(logger, logging.ERROR, "pool scan failed", pool=pool_name, error=str(exc))
                summary["results"].append(
                    {"target": pool_name, "status": "error", "error": str(exc)}
                )
        self.ctx.metrics.positions.set(summary["positions"])
        self.ctx.metrics.positions_liquidatable.set(summary["liquidatable"])
        return summary

    async def _tick_pool(self, pool_name: str, summary: dict[str, Any]) -> None:
        metrics = self.ctx.metrics
        now = await clock(self.ctx.rpc)
        snapshot = await load_pool(self.ctx.rpc, pool_name, metrics)
        positions = await load_positions(self.ctx.rpc, snapshot.key, metrics)
        prices, bundles = self._prices(snapshot, now.unix_timestamp)
        started = time.perf_counter()
        result = evaluate(
            positions,
            {k: c.state for k, c in snapshot.custodies.items()},
            prices,
            now.unix_timestamp,
            snapshot.aum_usd,
        )
        metrics.evaluation_seconds.observe(time.perf_counter() - started)
        summary["positions"] += len(positions)
        summary["liquidatable"] += len(result.candidates)
        summary["unevaluated"] += len(result.errors)
        if result.errors:
            log(
                logger,
                logging.WARNING,
                "positions not evaluated",
                pool=pool_name,
                count=len(result.errors),
                errors=sorted(set(result.errors.values())),
            )
        live = {c.position.key for c in result.candidates}
        for key in list(self.first_seen):
            if key not in live:
                del self.first_seen[key]
        for candidate in result.candidates:
            self.first_seen.setdefault(candidate.position.key, (now.slot, time.monotonic()))
        chosen = result.candidates[: self.config.max_per_tick]
        gate = asyncio.Semaphore(max(1, self.config.concurrency))

        async def one(candidate: Candidate) -> dict[str, Any]:
            async with gate:
                try:
                    return await self._liquidate(snapshot, candidate, bundles)
                except Exception as exc:
                    log(
                        logger,
                        logging.ERROR,
                        "liquidation failed",
                        position=str(candidate.position.key),
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    return {
                        "target": str(candidate.position.key),
                        "status": "error",
                        "error": str(exc),
                    }

        summary["results"] += await asyncio.gather(*(one(c) for c in chosen))

    def _prices(
        self, snapshot: PoolSnapshot, now: int
    ) -> tuple[dict[Pubkey, q.Prices | str], dict[Pubkey, CustodyInfo]]:
        """Each custody's prices at ``now``; a custody whose oracle is stale or about to be,
        and for which the oracle job has a fresh quote, is priced at that quote and listed in
        the second dict (its price update goes into the liquidation transaction)."""
        prices: dict[Pubkey, q.Prices | str] = {}
        bundles: dict[Pubkey, CustodyInfo] = {}
        for key, info in snapshot.custodies.items():
            oracle = info.oracle
            near_stale = (
                oracle is not None
                and now + self.config.stale_margin_sec
                > oracle.publish_time + info.state.oracle.max_price_age_sec
            )
            if (oracle is None or near_stale) and self.oracle is not None and info.oracle_is_custom:
                fresh = self.oracle.fresh_quote(snapshot.name, info.mint)
                if fresh is not None and (oracle is None or now > oracle.publish_time):
                    _, quote = fresh
                    state = q.CustomOracleState(quote.price, quote.expo, quote.conf, quote.ema, now)
                    try:
                        prices[key] = q.read_custody_prices(info.state, state, now)
                        bundles[key] = info
                        continue
                    except q.PROGRAM_ERRORS:
                        pass
            try:
                prices[key] = info.prices(now)
            except q.PROGRAM_ERRORS as exc:
                prices[key] = str(getattr(exc, "program_error", exc))
        return prices, bundles

    async def _receiving_accounts(
        self, owners: list[Pubkey], mint: Pubkey, ixs: list[Instruction]
    ) -> list[Pubkey]:
        """Per owner, a token account for ``mint`` that can receive: its associated account
        (created if missing) unless that one is frozen, else one at an address derived from the
        keeper's key (created if missing). One ``getMultipleAccounts`` for all of them; the
        creating instructions are appended to ``ixs``."""
        payer = self.ctx.payer.pubkey()
        seeds = [hashlib.sha256(bytes(owner) + bytes(mint)).hexdigest()[:32] for owner in owners]
        associated = [get_associated_token_address(owner, mint) for owner in owners]
        fallback = [Pubkey.create_with_seed(payer, seed, TOKEN_PROGRAM_ID) for seed in seeds]
        infos = await multiple_accounts(self.ctx.rpc, [*associated, *fallback])
        out = []
        for i, owner in enumerate(owners):
            if not _is_frozen(infos[i]):
                ixs.append(create_idempotent_associated_token_account(payer, owner, mint))
                out.append(associated[i])
                continue
            if infos[len(owners) + i] is None:
                await self._create_fallback(owner, mint, fallback[i], seeds[i], ixs)
            log(
                logger,
                logging.INFO,
                "associated token account frozen, paying another account",
                owner=str(owner),
                mint=str(mint),
                account=str(fallback[i]),
            )
            out.append(fallback[i])
        return out

    async def _create_fallback(
        self, owner: Pubkey, mint: Pubkey, account: Pubkey, seed: str, ixs: list[Instruction]
    ) -> None:
        payer = self.ctx.payer.pubkey()
        rent = await self.ctx.rpc.call(
            lambda c: c.connection.get_minimum_balance_for_rent_exemption(
                TOKEN_ACCOUNT_SIZE, Confirmed
            ),
            "getMinimumBalanceForRentExemption",
        )
        ixs.append(
            create_account_with_seed(
                CreateAccountWithSeedParams(
                    from_pubkey=payer,
                    to_pubkey=account,
                    base=payer,
                    seed=seed,
                    lamports=rent.value,
                    space=TOKEN_ACCOUNT_SIZE,
                    owner=TOKEN_PROGRAM_ID,
                )
            )
        )
        ixs.append(
            initialize_account(
                InitializeAccountParams(
                    program_id=TOKEN_PROGRAM_ID, account=account, mint=mint, owner=owner
                )
            )
        )

    async def _liquidate(
        self, snapshot: PoolSnapshot, candidate: Candidate, bundles: dict[Pubkey, CustodyInfo]
    ) -> dict[str, Any]:
        record = candidate.position
        custody = snapshot.custodies[record.custody]
        collateral = snapshot.custodies[record.collateral_custody]
        side = LONG if candidate.side == "long" else SHORT
        market = Market(snapshot.name, custody.mint, collateral.mint, side)
        payer = self.ctx.payer.pubkey()
        needs_price = [
            i
            for i in {custody.key: custody, collateral.key: collateral}.values()
            if i.key in bundles
        ]
        signers: list[Keypair] = []
        if needs_price and self.oracle is not None:
            signers.append(self.oracle.authority)

        async def build() -> list[Instruction]:
            client = self.ctx.rpc.client
            ixs: list[Instruction] = []
            if needs_price and self.oracle is not None:
                now = (await clock(self.ctx.rpc)).unix_timestamp
                for info in needs_price:
                    fresh = self.oracle.fresh_quote(snapshot.name, info.mint)
                    if fresh is not None:
                        feed, quote = fresh
                        ixs.append(self.oracle.price_ix(feed, quote, now))
            mint = collateral.mint
            receiving, owner_receiving = await self._receiving_accounts(
                [payer, record.owner], mint, ixs
            )
            ixs.append(
                liquidate_ix(
                    client,
                    payer,
                    market,
                    record.owner,
                    receiving_account=receiving,
                    owner_receiving_account=owner_receiving,
                )
            )
            return ixs

        result = await self.ctx.sender.submit("liquidate", str(record.key), build, signers)
        out = {**tx_summary(result), "side": candidate.side, "step": candidate.step}
        if result.status == "landed":
            self.ctx.metrics.liquidations.labels(side=candidate.side).inc()
            seen = self.first_seen.pop(record.key, None)
            if seen is not None and result.slot is not None:
                out["lag_slots"] = max(0, result.slot - seen[0])
                self.ctx.metrics.liquidation_lag_slots.observe(out["lag_slots"])
                self.ctx.metrics.liquidation_lag_seconds.observe(time.monotonic() - seen[1])
            event = result.event("PositionLiquidated")
            if event is not None:
                out["remaining_size_usd"] = int(getattr(event, "remaining_size_usd", 0))
            log(logger, logging.INFO, "position liquidated", **out)
        elif result.status in ("rejected", "failed"):
            log(logger, logging.INFO, "liquidation refused by the program", **out)
        return out


TOKEN_ACCOUNT_SIZE = 165
_FROZEN = 2
"""SPL token account state (the byte at offset 108): 1 initialized, 2 frozen."""


def _is_frozen(info: Any) -> bool:
    if info is None:
        return False
    data = bytes(info.data)
    return len(data) >= TOKEN_ACCOUNT_SIZE and data[108] == _FROZEN
