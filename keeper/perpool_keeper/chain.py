"""Reading what the keeper works on: the clock, a pool with its custodies and oracles, and
every open position of the pool (one ``getProgramAccounts`` with filters)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from perpool import pda
from perpool import quotes as q
from perpool.client import PerpoolClient
from perpool.localnet import CLOCK_SYSVAR, ClockSysvar
from perpool.program import PROGRAM_ID, pool_position_filters
from perpool_keeper.logs import log
from perpool_keeper.metrics import Metrics
from perpool_keeper.pyth import parse_price_update
from perpool_keeper.rpc import RpcPool

logger = logging.getLogger("perpool_keeper.chain")

"""Anchor discriminator, then ``owner``; ``pool`` follows."""


@dataclass(frozen=True)
class Clock:
    slot: int
    unix_timestamp: int


@dataclass
class CustodyInfo:
    key: Pubkey
    mint: Pubkey
    decoded: Any
    state: q.CustodyState
    oracle_key: Pubkey
    oracle_is_custom: bool
    oracle: q.CustomOracleState | None
    """The oracle's current price (custom or Pyth, as the program reads it), None if unreadable."""

    def prices(self, now: int) -> q.Prices:
        """The custody's prices as the program would read them at ``now`` (raises the program
        error the instruction would fail with)."""
        if self.oracle is None:
            raise q.QuoteError("InvalidOracleAccount")
        return q.read_custody_prices(self.state, self.oracle, now)


@dataclass
class PoolSnapshot:
    name: str
    key: Pubkey
    aum_usd: int
    custodies: dict[Pubkey, CustodyInfo] = field(default_factory=dict)

    def by_mint(self, mint: Pubkey) -> CustodyInfo | None:
        return next((c for c in self.custodies.values() if c.mint == mint), None)


async def clock(rpc: RpcPool) -> Clock:
    info = (
        await rpc.call(lambda c: c.connection.get_account_info(CLOCK_SYSVAR, Confirmed), "clock")
    ).value
    if info is None:
        raise RuntimeError("the cluster has no Clock sysvar account")
    decoded = ClockSysvar.decode(bytes(info.data))
    return Clock(decoded.slot, decoded.unix_timestamp)


async def multiple_accounts(rpc: RpcPool, keys: list[Pubkey]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(keys), 100):
        chunk = keys[start : start + 100]
        resp = await rpc.call(_get_multiple(chunk), "getMultipleAccounts")
        out += list(resp.value)
    return out


def _get_multiple(chunk: list[Pubkey]) -> Callable[[PerpoolClient], Awaitable[Any]]:
    async def op(client: PerpoolClient) -> Any:
        return await client.connection.get_multiple_accounts(chunk, Confirmed)

    return op


async def load_pool(rpc: RpcPool, name: str, metrics: Metrics | None = None) -> PoolSnapshot:
    coder = rpc.client.program.coder.accounts
    pool_key = pda.pool(name)
    (pool_info,) = await multiple_accounts(rpc, [pool_key])
    if pool_info is None:
        raise RuntimeError(f"pool {name!r} does not exist")
    pool = coder.decode(bytes(pool_info.data))
    snapshot = PoolSnapshot(name, pool_key, int(pool.aum_usd))
    custody_keys = list(pool.custodies)
    infos = await multiple_accounts(rpc, custody_keys)
    decoded = []
    for key, info in zip(custody_keys, infos, strict=True):
        if info is None:
            continue
        try:
            decoded.append((key, coder.decode(bytes(info.data))))
        except Exception as exc:
            if metrics:
                metrics.bad_accounts.inc()
            log(logger, logging.WARNING, "custody not decodable", custody=str(key), error=str(exc))
    oracle_keys = [d.oracle.oracle_account for _, d in decoded]
    oracle_infos = await multiple_accounts(rpc, oracle_keys)
    for (key, custody), oracle_info in zip(decoded, oracle_infos, strict=True):
        is_custom = type(custody.oracle.oracle_type).__name__ == "Custom"
        oracle: q.CustomOracleState | None = None
        if oracle_info is not None:
            try:
                oracle = _read_oracle(coder, bytes(oracle_info.data), is_custom, custody)
            except Exception as exc:
                log(logger, logging.WARNING, "oracle unreadable", custody=str(key), error=str(exc))
        snapshot.custodies[key] = CustodyInfo(
            key=key,
            mint=custody.mint,
            decoded=custody,
            state=q.CustodyState.from_account(custody, key=key),
            oracle_key=custody.oracle.oracle_account,
            oracle_is_custom=is_custom,
            oracle=oracle,
        )
    return snapshot


def _read_oracle(coder: Any, data: bytes, is_custom: bool, custody: Any) -> q.CustomOracleState:
    if is_custom:
        return q.CustomOracleState.from_account(coder.decode(data))
    pyth = parse_price_update(data)
    if not pyth.fully_verified:
        raise ValueError("UnverifiedPythPrice")
    if pyth.feed_id != bytes(custody.oracle.feed_id):
        raise ValueError("WrongPythFeed")
    if pyth.price < 0 or pyth.ema < 0:
        raise ValueError("InvalidOraclePrice")
    return q.CustomOracleState(pyth.price, pyth.expo, pyth.conf, pyth.ema, pyth.publish_time)


@dataclass(frozen=True)
class PositionRecord:
    key: Pubkey
    owner: Pubkey
    custody: Pubkey
    collateral_custody: Pubkey
    state: q.PositionState


async def load_positions(
    rpc: RpcPool, pool_key: Pubkey, metrics: Metrics | None = None
) -> list[PositionRecord]:
    """Every position of the pool: ``getProgramAccounts`` filtered on the ``Position``
    discriminator and the pool address; an undecodable account is counted and skipped."""
    program = rpc.client.program
    coder = program.coder.accounts
    filters: list[Any] = pool_position_filters(pool_key)
    resp = await rpc.call(
        lambda c: c.connection.get_program_accounts(
            PROGRAM_ID, commitment=Confirmed, encoding="base64", filters=filters
        ),
        "getProgramAccounts",
    )
    out: list[PositionRecord] = []
    for item in resp.value:
        try:
            decoded = coder.decode(bytes(item.account.data))
            out.append(
                PositionRecord(
                    key=item.pubkey,
                    owner=decoded.owner,
                    custody=decoded.custody,
                    collateral_custody=decoded.collateral_custody,
                    state=q.PositionState.from_account(decoded),
                )
            )
        except Exception as exc:
            if metrics:
                metrics.bad_accounts.inc()
            log(
                logger,
                logging.WARNING,
                "position not decodable",
                position=str(item.pubkey),
                error=str(exc),
            )
    return out
