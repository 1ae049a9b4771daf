"""``perpool setup`` and ``perpool oracle set``: the admin's and the oracle authority's tools."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from perpool import pda
from perpool.cli.app import Ctx, Output, add_command, simulate
from perpool.cli.output import key_values, rows_table
from perpool.config import ConfigError, load_keypair
from perpool.errors import PerpoolError
from perpool.exchange import Exchange
from perpool.faucet import is_localnet
from perpool.oracle import set_price
from perpool.pool_setup import setup_pool


def _render_setup(console: Console, data: dict[str, Any]) -> None:
    console.print(
        rows_table(
            f"pool {data['pool']} ({data['address']})",
            data["steps"],
            [("step", "Step"), ("status", "Status"), ("address", "Address"), ("detail", "Detail")],
        )
    )
    for step in data["steps"]:
        for line in step.get("logs", []):
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


async def _setup(ctx: Ctx, args: argparse.Namespace) -> Output:
    spec = ctx.spec()
    client = ctx.client()
    approvers = []
    for path in args.approver or []:
        try:
            approvers.append(load_keypair(path))
        except ConfigError as exc:
            raise PerpoolError(str(exc), code="keypair_missing") from exc
    steps = await setup_pool(
        client,
        spec,
        localnet=await is_localnet(ctx.url),
        approvers=approvers,
        update_config=args.update_config,
        simulate=simulate(args),
        status=ctx.status,
    )
    created = sum(s.status in ("created", "updated") for s in steps)
    data = {
        "pool": spec.pool_name,
        "address": str(pda.pool(spec.pool_name)),
        "spec": str(spec.path),
        "admin": str(client.payer.pubkey()),
        "simulated": simulate(args),
        "created": created,
        "steps": [s.to_json() for s in steps],
        "tokens": [
            {"symbol": c.symbol, "mint": str(c.mint), "decimals": c.decimals, "stable": c.stable}
            for c in spec.custodies
        ],
    }
    return Output(data, _render_setup)


async def _oracle_set(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex: Exchange = await ctx.exchange()
    result = await set_price(
        ex,
        ctx.keypair(),
        args.symbol,
        args.price,
        conf_text=args.conf,
        ema_text=args.ema,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values(f"oracle {result.fields['symbol']}"))


def register(commands: Any, common: argparse.ArgumentParser, tx: argparse.ArgumentParser) -> None:
    setup = add_command(
        commands,
        "setup",
        _setup,
        "admin: create the program config, pool, custodies, oracles (and localnet test mints) "
        "from a pool spec; re-running reports what exists",
        [common, tx],
    )
    setup.add_argument(
        "--update-config",
        action="store_true",
        help="apply the spec's config to custodies whose config on chain differs",
    )
    setup.add_argument(
        "--approver",
        action="append",
        metavar="KEYPAIR",
        help="keypair of another multisig signer approving each admin instruction (repeatable)",
    )
    oracle = add_command(commands, "oracle", None, "custom oracle prices", [common])
    oracle_cmds = oracle.add_subparsers(metavar="COMMAND")
    set_p = add_command(
        oracle_cmds, "set", _oracle_set, "post a price as the oracle authority", [common, tx]
    )
    set_p.add_argument("symbol", metavar="SYMBOL")
    set_p.add_argument("price", metavar="PRICE", help="USD per token, e.g. 151.25")
    set_p.add_argument("--conf", metavar="C", help="confidence interval in USD (default 0)")
    set_p.add_argument("--ema", metavar="E", help="EMA price in USD (default: PRICE)")
