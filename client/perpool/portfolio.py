"""Read-only summaries: a trader's positions and the state of a pool.

Figures come from the program's view instructions where the program computes them (PnL,
fees owed, liquidation price and state, AUM, LP price) and from the decoded accounts otherwise.
Each entry also carries the whole decoded account (``account``, raw on-chain units), so
fields the program gains later show up without changes here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from solana.rpc.commitment import Confirmed
from solders.pubkey import Pubkey

from perpool import views
from perpool.amounts import (
    BPS,
    LP_DECIMALS,
    bps_to_ratio,
    format_units,
    oracle_price,
    price_9dp,
    usd,
)
from perpool.client import PerpoolClient, ViewError
from perpool.exchange import Exchange, Token
from perpool.localnet import CLOCK_SYSVAR, ClockSysvar
from perpool.program import PROGRAM_ID
from perpool.trade import LONG, SHORT, Market
from perpool.txn import jsonable

RATE_DECIMALS = 9
"""Borrow rates are hourly with 9 decimals."""


def _side_name(side: Any) -> str:
    return LONG if type(side).__name__.lower() == "long" else SHORT


def _ratio(numerator: int, denominator: int, places: int = 6) -> str | None:
    if denominator == 0:
        return None
    value = (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1).scaleb(-places))
    return format(value.normalize(), "f")


def _signed_usd(profit: int, loss: int) -> str:
    return usd(profit - loss)


def _view_error(exc: ViewError) -> str:
    line = next((x for x in reversed(exc.logs) if "Error Code" in x), None)
    return line.split("Error Code: ", 1)[1].split(".", 1)[0] if line else str(exc.err)


async def chain_time(ex: Exchange) -> int:
    """The cluster's Clock ``unix_timestamp`` (what oracle ages are measured against)."""
    info = (await ex.client.connection.get_account_info(CLOCK_SYSVAR, Confirmed)).value
    return ClockSysvar.decode(bytes(info.data)).unix_timestamp if info is not None else 0


async def positions(ex: Exchange, owner: Pubkey) -> list[dict[str, Any]]:
    client = ex.client
    found = await client.program.account["Position"].all(buffer=bytes(owner))
    by_custody = {t.custody: t for t in ex.tokens}
    out = []
    for item in sorted(found, key=lambda p: str(p.public_key)):
        position = item.account
        if position.pool != ex.pool_key:
            continue
        token = by_custody[position.custody]
        collateral = by_custody[position.collateral_custody]
        side = _side_name(position.side)
        market = Market(ex.pool_name, token.mint, collateral.mint, side)
        entry: dict[str, Any] = {
            "address": str(item.public_key),
            "symbol": token.symbol,
            "side": side,
            "collateralToken": collateral.symbol,
            "sizeUsd": usd(position.size_usd),
            "collateralUsd": usd(position.collateral_usd),
            "collateral": format_units(position.collateral_amount, collateral.decimals),
            "entryPriceUsd": price_9dp(position.price),
            "openTime": position.open_time,
        }
        try:
            entry |= await _position_figures(ex, token, market, owner, position)
        except ViewError as exc:
            entry["error"] = _view_error(exc)
        entry["account"] = jsonable(position)
        out.append(entry)
    return out


async def _position_figures(
    ex: Exchange, token: Token, market: Market, owner: Pubkey, position: Any
) -> dict[str, Any]:
    client = ex.client
    pnl = await views.pnl(client, market, owner)
    liquidation_price = await views.liquidation_price(client, market, owner)
    liquidatable = await views.liquidation_state(client, market, owner)
    fees = pnl.borrow_fee_usd + pnl.close_fee_usd + pnl.funding_paid_usd
    credit = position.collateral_usd + pnl.funding_received_usd
    margin = credit + pnl.profit_usd - pnl.loss_usd - fees
    maintenance_bps = BPS * BPS // max(token.account.pricing.max_leverage, 1)
    margin_bps = margin * BPS // position.size_usd if position.size_usd else 0
    if liquidatable:
        health = "liquidatable"
    elif margin_bps < 2 * maintenance_bps:
        health = "at_risk"
    else:
        health = "healthy"
    figures: dict[str, Any] = {
        "markPriceUsd": price_9dp(pnl.exit_price),
        "pnlUsd": _signed_usd(pnl.profit_usd, pnl.loss_usd),
        "borrowFeeUsd": usd(pnl.borrow_fee_usd),
        "closeFeeUsd": usd(pnl.close_fee_usd),
        "marginUsd": usd(margin),
        "leverage": _ratio(position.size_usd, margin, 2) if margin > 0 else None,
        "liquidationPriceUsd": price_9dp(liquidation_price),
        "marginRatio": _ratio(margin, position.size_usd),
        "maintenanceMarginRatio": bps_to_ratio(maintenance_bps),
        "health": health,
        "liquidatable": liquidatable,
    }
    # Funding owed by the position (negative when it is owed funding).
    figures["fundingFeeUsd"] = _signed_usd(pnl.funding_paid_usd, pnl.funding_received_usd)
    return figures


async def pool_summary(ex: Exchange) -> dict[str, Any]:
    client = ex.client
    now = await chain_time(ex)
    oracles = await _custom_oracles(ex)
    lp_supply = int((await client.connection.get_token_supply(ex.lp_mint)).value.amount)
    summary: dict[str, Any] = {
        "pool": ex.pool_name,
        "address": str(ex.pool_key),
        "lpMint": str(ex.lp_mint),
        "lpSupply": format_units(lp_supply, LP_DECIMALS),
        "chainTime": now,
    }
    try:
        aum = await views.assets_under_management(client, ex.pool_name)
        summary |= {
            "aumUsd": usd(aum.spot_usd),
            "aumHighUsd": usd(aum.high_usd),
            "aumLowUsd": usd(aum.low_usd),
            "lpPriceUsd": usd(aum.lp_price_usd),
        }
    except ViewError as exc:
        summary |= {"aumUsd": None, "lpPriceUsd": None, "aumError": _view_error(exc)}
    summary["custodies"] = [_custody_entry(t, oracles.get(t.oracle), now) for t in ex.tokens]
    return summary


async def _custom_oracles(ex: Exchange) -> dict[Pubkey, Any]:
    keys = [t.oracle for t in ex.tokens]
    infos = (await ex.client.connection.get_multiple_accounts(keys)).value
    out: dict[Pubkey, Any] = {}
    for key, info in zip(keys, infos, strict=True):
        if info is not None and info.owner == PROGRAM_ID:
            out[key] = ex.client.program.coder.accounts.decode(bytes(info.data))
    return out


def _custody_entry(token: Token, oracle: Any, now: int) -> dict[str, Any]:
    c = token.account
    d = token.decimals
    stats = c.stats if isinstance(c.stats, dict) else vars(c.stats)
    fees_usd = sum(int(v) for k, v in stats.items() if k.startswith("fees_") and k.endswith("_usd"))
    entry: dict[str, Any] = {
        "symbol": token.symbol,
        "mint": str(token.mint),
        "custody": str(token.custody),
        "decimals": d,
        "stable": token.stable,
        "oracle": str(token.oracle),
        "price": None,
        "emaPrice": None,
        "oracleAgeSeconds": None,
        "owned": format_units(c.assets.owned, d),
        "locked": format_units(c.assets.locked, d),
        "collateral": format_units(c.assets.collateral, d),
        "protocolFees": format_units(c.assets.protocol_fees, d),
        "utilization": _ratio(c.assets.locked, c.assets.owned) or "0",
        "borrowRateHourly": format_units(c.borrow_state.current_rate, RATE_DECIMALS),
        "longOpenInterestUsd": usd(c.longs.size_usd),
        "shortOpenInterestUsd": usd(c.shorts.size_usd),
        "longPositions": c.longs.open_positions,
        "shortPositions": c.shorts.open_positions,
        "feesCollectedUsd": usd(fees_usd),
        "targetRatio": bps_to_ratio(c.ratios.target_bps),
    }
    if oracle is not None:
        entry |= {
            "price": oracle_price(oracle.price, oracle.expo),
            "emaPrice": oracle_price(oracle.ema, oracle.expo),
            "oracleAgeSeconds": now - oracle.publish_time if oracle.publish_time else None,
        }
    fund = c.insurance
    entry["insuranceFund"] = {
        "balance": format_units(fund.balance, d),
        "totalInflow": format_units(fund.total_inflow, d),
        "totalOutflow": format_units(fund.total_outflow, d),
        "badDebtCoveredUsd": usd(fund.bad_debt_covered_usd),
        "badDebtUncoveredUsd": usd(fund.bad_debt_uncovered_usd),
        "capUsd": usd(c.liquidation.insurance_fund_cap_usd),
    }
    rate = c.funding_state.current_rate
    entry["funding"] = {
        # Positive: longs pay shorts; negative: shorts pay longs.
        "rateHourly": ("-" if rate < 0 else "") + format_units(abs(rate), RATE_DECIMALS),
        "fundingC": c.funding.funding_c,
    }
    entry["payoff"] = type(c.payoff.kind).__name__.lower()
    entry["account"] = jsonable(c)
    return entry


async def decode_any(client: PerpoolClient, address: Pubkey) -> dict[str, Any] | None:
    """Any Perpool program account, decoded by its discriminator (None if it does not exist)."""
    info = (await client.connection.get_account_info(address)).value
    if info is None:
        return None
    if info.owner != PROGRAM_ID:
        return {"address": str(address), "owner": str(info.owner), "type": None, "data": None}
    data = bytes(info.data)
    coder = client.program.coder.accounts
    name = coder.discriminator_to_acc_name.get(data[:8])
    if name is None:
        return {"address": str(address), "owner": str(info.owner), "type": None, "data": None}
    decoded = coder.decode(data)
    return {
        "address": str(address),
        "owner": str(info.owner),
        "type": name,
        "data": jsonable(decoded),
    }
