"""``perpool positions``, ``perpool pool`` and ``perpool account``: read-only views."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from solders.pubkey import Pubkey

from perpool import portfolio
from perpool.cli.app import Ctx, Output, add_command
from perpool.cli.output import rows_table
from perpool.errors import InputError, PerpoolError

_POSITION_COLUMNS = [
    ("symbol", "Market"),
    ("side", "Side"),
    ("sizeUsd", "size $"),
    ("collateralUsd", "collateral $"),
    ("entryPriceUsd", "entry"),
    ("markPriceUsd", "mark"),
    ("pnlUsd", "PnL $"),
    ("borrowFeeUsd", "borrow fee $"),
    ("fundingFeeUsd", "funding $"),
    ("leverage", "leverage"),
    ("liquidationPriceUsd", "liq. price"),
    ("health", "Health"),
]


def _render_positions(console: Console, data: dict[str, Any]) -> None:
    rows = data["positions"]
    if not rows:
        console.print(f"{data['owner']} has no open positions")
        return
    columns = [c for c in _POSITION_COLUMNS if any(c[0] in r for r in rows)]
    console.print(rows_table(f"positions of {data['owner']}", rows, columns))
    for row in rows:
        if "error" in row:
            console.print(f"{row['symbol']} {row['side']}: figures unavailable ({row['error']})")


async def _positions(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    owner = ctx.owner(args.owner)
    rows = await portfolio.positions(ex, owner)
    return Output({"owner": str(owner), "pool": ex.pool_name, "positions": rows}, _render_positions)


_CUSTODY_COLUMNS = [
    ("symbol", "Token"),
    ("price", "price $"),
    ("oracleAgeSeconds", "age s"),
    ("owned", "owned"),
    ("locked", "locked"),
    ("utilization", "util."),
    ("borrowRateHourly", "borrow /h"),
    ("longOpenInterestUsd", "long OI $"),
    ("shortOpenInterestUsd", "short OI $"),
    ("feesCollectedUsd", "fees $"),
    ("insuranceFund", "insurance"),
]


def _render_pool(console: Console, data: dict[str, Any]) -> None:
    head = (
        f"pool {data['pool']}: AUM ${data.get('aumUsd') or '-'}, "
        f"LP price ${data.get('lpPriceUsd') or '-'}, LP supply {data['lpSupply']}"
    )
    rows = data["custodies"]
    columns = [c for c in _CUSTODY_COLUMNS if any(c[0] in r for r in rows)]
    console.print(rows_table(head, rows, columns))
    if data.get("aumError"):
        console.print(f"AUM unavailable: {data['aumError']}")


async def _pool(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    return Output(await portfolio.pool_summary(ex), _render_pool)


def _render_account(console: Console, data: dict[str, Any]) -> None:
    console.print(f"{data['type'] or 'not a Perpool account'} {data['address']}", highlight=False)
    console.print_json(data=data["data"])


async def _account(ctx: Ctx, args: argparse.Namespace) -> Output:
    try:
        address = Pubkey.from_string(args.address)
    except ValueError as exc:
        raise InputError(f"{args.address!r} is not a base58 address") from exc
    decoded = await portfolio.decode_any(ctx.client(signer=False), address)
    if decoded is None:
        raise PerpoolError(f"account {address} does not exist", code="not_found")
    return Output(decoded, _render_account)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    pos = add_command(
        commands, "positions", _positions, "open positions with PnL, fees and health", [common]
    )
    pos.add_argument("--owner", metavar="PUBKEY", help="whose positions (default: the keypair's)")
    add_command(
        commands, "pool", _pool, "custodies, prices, AUM, LP price, utilization, fees", [common]
    )
    acc = add_command(commands, "account", _account, "decode any Perpool program account", [common])
    acc.add_argument("address", metavar="ADDRESS")
