"""``perpool faucet`` (localnet test tokens) and ``perpool balances``."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from solana.rpc.commitment import Confirmed

from perpool.amounts import LP_DECIMALS, format_units
from perpool.cli.app import Ctx, Output, add_command, simulate
from perpool.cli.output import key_values, rows_table
from perpool.faucet import faucet
from perpool.wallet import wallet_balance


async def _faucet(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await faucet(
        ex,
        ctx.url,
        args.symbol,
        args.amount,
        ctx.owner(args.to),
        sol_text=args.sol,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values("faucet"))


def _render_balances(console: Console, data: dict[str, Any]) -> None:
    console.print(
        rows_table(
            f"balances of {data['owner']}  (SOL for fees: {data['sol']})",
            data["tokens"],
            [("symbol", "Token"), ("balance", "balance"), ("mint", "Mint")],
        )
    )


async def _balances(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    owner = ctx.owner(args.owner)
    conn = ex.client.connection
    lamports = (await conn.get_balance(owner, Confirmed)).value
    tokens = [
        {
            "symbol": t.symbol,
            "mint": str(t.mint),
            "balance": format_units(await wallet_balance(ex.client, owner, t.mint), t.decimals),
        }
        for t in ex.tokens
    ]
    lp = await wallet_balance(ex.client, owner, ex.lp_mint)
    tokens.append(
        {"symbol": "LP", "mint": str(ex.lp_mint), "balance": format_units(lp, LP_DECIMALS)}
    )
    data = {"owner": str(owner), "sol": format_units(lamports, 9), "tokens": tokens}
    return Output(data, _render_balances)


def register(commands: Any, common: argparse.ArgumentParser, tx: argparse.ArgumentParser) -> None:
    p = add_command(
        commands,
        "faucet",
        _faucet,
        "localnet only: mint test tokens (and native SOL for fees)",
        [common, tx],
    )
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("amount", metavar="AMOUNT")
    p.add_argument("--to", metavar="PUBKEY", help="recipient (default: the keypair's address)")
    p.add_argument(
        "--sol",
        metavar="N",
        help="also airdrop N native SOL (default: 1 SOL when the recipient has less than 0.1)",
    )
    b = add_command(
        commands, "balances", _balances, "native SOL, pool tokens and LP tokens held", [common]
    )
    b.add_argument("--owner", metavar="PUBKEY", help="whose balances (default: the keypair's)")
