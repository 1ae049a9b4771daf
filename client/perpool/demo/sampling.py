"""What the demo measures, read from the chain: the program's AUM view, the pool, custody,
oracle and mint accounts, the vault balances, and the liquidations as ``PositionLiquidated``
events of the landed transactions.

Liquidations are found through the keeper's reward accounts (its associated token account
per collateral token): every liquidation pays the liquidator there and nothing else touches
them, so ``getSignaturesForAddress`` on them lists exactly the liquidation transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey
from solders.signature import Signature
from spl.token.instructions import get_associated_token_address

from perpool import pda, views
from perpool.amounts import BPS
from perpool.errors import PerpoolError
from perpool.exchange import Exchange, Token, fetch_many
from perpool.localnet import CLOCK_SYSVAR, ClockSysvar
from perpool.math import OraclePrice, token_to_usd_floor, utilization_floor
from perpool.trade import LONG, SHORT
from perpool.txn import decode_events

FEE_KINDS = {
    "trading": ("fees_open_position_usd", "fees_close_position_usd"),
    "borrow": ("fees_borrow_usd",),
    "lp": ("fees_add_liquidity_usd", "fees_remove_liquidity_usd"),
    "swap": ("fees_swap_usd",),
    "liquidation": ("fees_liquidation_usd",),
}
"""Fee categories over the custodies' ``stats`` (USD at the time each fee was collected)."""


def is_synthetic(token: Token) -> bool:
    return type(token.account.payoff.kind).__name__.lower() != "spot"


@dataclass(frozen=True)
class Liquidation:
    signature: str
    slot: int
    chain_time: int
    symbol: str
    side: str
    collateral_symbol: str
    owner: str
    position: str
    size_usd: int
    """Size closed by this liquidation."""
    remaining_size_usd: int
    close_bps: int
    ladder_step: int
    bad_debt_usd: int
    reward_amount: int
    insurance_amount: int
    exit_price: int

    @property
    def full(self) -> bool:
        return self.remaining_size_usd == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "signature": self.signature,
            "slot": self.slot,
            "chainTime": self.chain_time,
            "symbol": self.symbol,
            "side": self.side,
            "collateralSymbol": self.collateral_symbol,
            "owner": self.owner,
            "position": self.position,
            "sizeUsd": self.size_usd,
            "remainingSizeUsd": self.remaining_size_usd,
            "closeBps": self.close_bps,
            "ladderStep": self.ladder_step,
            "full": self.full,
            "badDebtUsd": self.bad_debt_usd,
            "rewardAmount": self.reward_amount,
            "insuranceAmount": self.insurance_amount,
            "exitPrice9dp": self.exit_price,
        }


@dataclass
class LiquidationScanner:
    """New liquidations since the last scan, oldest first."""

    ex: Exchange
    keeper: Pubkey
    seen: dict[Pubkey, Signature | None] = field(default_factory=dict)
    found: list[Liquidation] = field(default_factory=list)

    def reward_accounts(self) -> dict[Pubkey, Token]:
        return {
            get_associated_token_address(self.keeper, t.mint): t
            for t in self.ex.tokens
            if not is_synthetic(t)
        }

    async def scan(self) -> list[Liquidation]:
        conn = self.ex.client.connection
        new: list[Liquidation] = []
        for account, collateral in self.reward_accounts().items():
            statuses = []
            before: Signature | None = None
            until = self.seen.get(account)
            while True:
                page = (
                    await conn.get_signatures_for_address(
                        account, before=before, until=until, limit=1000, commitment=Confirmed
                    )
                ).value
                statuses += page
                if len(page) < 1000:
                    break
                before = page[-1].signature
            if statuses:
                self.seen[account] = statuses[0].signature
            for status in reversed(statuses):
                if status.err is not None:
                    continue
                new += await self._liquidations(status.signature, status.slot, collateral)
        new.sort(key=lambda x: (x.slot, x.signature))
        self.found += new
        return new

    async def _liquidations(
        self, signature: Signature, slot: int, collateral: Token
    ) -> list[Liquidation]:
        client = self.ex.client
        tx = await client.connection.get_transaction(
            signature, commitment=Confirmed, max_supported_transaction_version=0
        )
        if tx.value is None or tx.value.transaction.meta is None:
            return []
        logs = list(tx.value.transaction.meta.log_messages or [])
        chain_time = int(tx.value.block_time or 0)
        out = []
        for event in decode_events(client, logs):
            if event["name"] != "PositionLiquidated":
                continue
            data = event["data"]
            owner = Pubkey.from_string(data["owner"])
            side = LONG if data["side"] == "long" else SHORT
            position = Pubkey.from_string(data["position"])
            token = next(
                t
                for t in self.ex.tokens
                if pda.position(owner, self.ex.pool_key, t.custody, side) == position
            )
            out.append(
                Liquidation(
                    signature=str(signature),
                    slot=slot,
                    chain_time=chain_time,
                    symbol=token.symbol,
                    side=side,
                    collateral_symbol=collateral.symbol,
                    owner=str(owner),
                    position=str(position),
                    size_usd=int(data["sizeUsd"]),
                    remaining_size_usd=int(data["remainingSizeUsd"]),
                    close_bps=int(data["closeBps"]),
                    ladder_step=int(data["step"]),
                    bad_debt_usd=int(data["badDebtUsd"]),
                    reward_amount=int(data["rewardAmount"]),
                    insurance_amount=int(data["insuranceAmount"]),
                    exit_price=int(data["exitPrice"]),
                )
            )
        return out


async def _existing(ex: Exchange, keys: list[Pubkey]) -> list[Any]:
    """Decoded accounts that must exist (the pool and its custodies)."""
    found = await fetch_many(ex.client, keys)
    missing = [str(k) for k, v in zip(keys, found, strict=True) if v is None]
    if missing:
        raise PerpoolError(f"accounts missing on chain: {', '.join(missing)}")
    return [v for v in found if v is not None]


def _oracle_price(oracle: Any) -> OraclePrice | None:
    if oracle is None or oracle.price <= 0:
        return None
    return OraclePrice(int(oracle.price), int(oracle.expo))


async def sample(ex: Exchange, scanner: LiquidationScanner, step: int) -> dict[str, Any]:
    """One point of the time series: the pool and every custody as the chain has them now,
    and the liquidations found so far. Money in integer on-chain units: USD with 6 decimals,
    token amounts in base units, utilization with 9 decimals, oracle prices as (price, expo)."""
    client = ex.client
    await scanner.scan()
    clock_info = (await client.connection.get_account_info(CLOCK_SYSVAR, Confirmed)).value
    assert clock_info is not None, "the cluster has no Clock sysvar"
    clock = ClockSysvar.decode(bytes(clock_info.data))
    keys = [ex.pool_key, *(t.custody for t in ex.tokens)]
    accounts = await _existing(ex, keys)
    pool = accounts[0]
    custodies = accounts[1 : 1 + len(ex.tokens)]
    oracles = await fetch_many(client, [t.oracle for t in ex.tokens])
    aum = await views.assets_under_management(client, ex.pool_name)
    point: dict[str, Any] = {
        "step": step,
        "chainTime": clock.unix_timestamp,
        "slot": clock.slot,
        "aumUsd": aum.spot_usd,
        "aumHighUsd": aum.high_usd,
        "aumLowUsd": aum.low_usd,
        "aumCachedUsd": pool.aum_usd,
        "lpSupply": aum.lp_supply,
        "lpPriceUsd": aum.lp_price_usd,
    }
    per: dict[str, Any] = {}
    totals = {
        "longOiUsd": 0,
        "shortOiUsd": 0,
        "protocolFeesUsd": 0,
        "insuranceUsd": 0,
        "badDebtCoveredUsd": 0,
        "badDebtUncoveredUsd": 0,
    }
    fees = dict.fromkeys(FEE_KINDS, 0)
    liquidation_volume_stats = 0
    for token, custody, oracle in zip(ex.tokens, custodies, oracles, strict=True):
        price = _oracle_price(oracle)
        a = custody.assets
        stats = custody.stats
        entry: dict[str, Any] = {
            "decimals": token.decimals,
            "synthetic": is_synthetic(token),
            "price": int(oracle.price) if oracle is not None else None,
            "expo": int(oracle.expo) if oracle is not None else None,
            "publishTime": int(oracle.publish_time) if oracle is not None else None,
            "owned": a.owned,
            "locked": a.locked,
            "collateral": a.collateral,
            "protocolFees": a.protocol_fees,
            "insurance": custody.insurance.balance,
            "utilization": utilization_floor(a.locked, a.owned) if a.locked <= a.owned else None,
            "longOiUsd": custody.longs.size_usd,
            "shortOiUsd": custody.shorts.size_usd,
            "longPositions": custody.longs.open_positions,
            "shortPositions": custody.shorts.open_positions,
            "borrowRateHourly": custody.borrow_state.current_rate,
            "fundingRateHourly": custody.funding_state.current_rate,
            "volumeLiquidationUsd": stats.volume_liquidation_usd,
            "fees": {
                kind: sum(int(getattr(stats, name)) for name in names)
                for kind, names in FEE_KINDS.items()
            },
        }
        valued = price is not None and not is_synthetic(token)
        entry["protocolFeesUsd"] = (
            token_to_usd_floor(a.protocol_fees, token.decimals, price)
            if valued and price is not None
            else 0
        )
        entry["insuranceUsd"] = (
            token_to_usd_floor(custody.insurance.balance, token.decimals, price)
            if valued and price is not None
            else 0
        )
        per[token.symbol] = entry
        totals["longOiUsd"] += entry["longOiUsd"]
        totals["shortOiUsd"] += entry["shortOiUsd"]
        totals["protocolFeesUsd"] += entry["protocolFeesUsd"]
        totals["insuranceUsd"] += entry["insuranceUsd"]
        totals["badDebtCoveredUsd"] += custody.insurance.bad_debt_covered_usd
        totals["badDebtUncoveredUsd"] += custody.insurance.bad_debt_uncovered_usd
        liquidation_volume_stats += entry["volumeLiquidationUsd"]
        for kind, value in entry["fees"].items():
            fees[kind] += value
    found = scanner.found
    point |= {
        "custodies": per,
        **totals,
        "fees": fees,
        "liquidations": len(found),
        "liquidationsFull": sum(1 for x in found if x.full),
        "liquidationVolumeUsd": sum(x.size_usd for x in found),
        "liquidationVolumeStatsUsd": liquidation_volume_stats,
        "badDebtUsd": sum(x.bad_debt_usd for x in found),
    }
    return point


async def conservation(ex: Exchange) -> dict[str, dict[str, Any]]:
    """Per custody: the vault balance against owned + collateral + protocol fees + insurance
    fund, and locked within owned."""
    client = ex.client
    custodies = await _existing(ex, [t.custody for t in ex.tokens])
    out: dict[str, dict[str, Any]] = {}
    for token, custody in zip(ex.tokens, custodies, strict=True):
        vault_key = pda.custody_token_account(ex.pool_key, token.mint)
        info = (await client.connection.get_account_info(vault_key, Confirmed)).value
        vault = (
            int(
                (
                    await client.connection.get_token_account_balance(vault_key, Confirmed)
                ).value.amount
            )
            if info is not None
            else 0
        )
        a = custody.assets
        expected = a.owned + a.collateral + a.protocol_fees + custody.insurance.balance
        out[token.symbol] = {
            "vault": vault,
            "owned": a.owned,
            "locked": a.locked,
            "collateral": a.collateral,
            "protocolFees": a.protocol_fees,
            "insurance": custody.insurance.balance,
            "ok": vault == expected and 0 <= a.locked <= a.owned,
        }
    return out


def pct_change_bps(before: int, after: int) -> int:
    """Change from ``before`` to ``after`` in bps (rounded toward zero), 0 from 0."""
    if before == 0:
        return 0
    diff = (after - before) * BPS
    return diff // before if diff >= 0 else -((-diff) // before)
