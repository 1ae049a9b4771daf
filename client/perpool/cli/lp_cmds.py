"""``perpool lp deposit|withdraw|quote``."""

from __future__ import annotations

import argparse
from typing import Any

from perpool import lp_actions
from perpool.cli.app import Ctx, Output, add_command, simulate
from perpool.cli.output import key_values
from perpool.trade_actions import check_slippage


async def _deposit(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    result = await lp_actions.deposit(
        ex,
        ctx.keypair(),
        args.symbol,
        args.amount,
        min_lp_text=args.min_lp,
        slippage_bps=check_slippage(args.slippage_bps),
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values("liquidity added"))


async def _withdraw(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    result = await lp_actions.withdraw(
        ex,
        ctx.keypair(),
        args.symbol,
        args.lp_amount,
        min_out_text=args.min_out,
        slippage_bps=check_slippage(args.slippage_bps),
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values("liquidity removed"))


async def _quote_deposit(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await lp_actions.quote_deposit(ex, args.symbol, args.amount)
    return Output(result.to_json(), key_values("deposit quote"))


async def _quote_withdraw(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await lp_actions.quote_withdraw(ex, args.symbol, args.lp_amount)
    return Output(result.to_json(), key_values("withdrawal quote"))


def _slippage(p: argparse.ArgumentParser, guard: str) -> None:
    p.add_argument(
        "--slippage-bps",
        type=int,
        default=lp_actions.DEFAULT_SLIPPAGE_BPS,
        metavar="N",
        help=f"without {guard}: the quote less N bps (default {lp_actions.DEFAULT_SLIPPAGE_BPS})",
    )


def register(commands: Any, common: argparse.ArgumentParser, tx: argparse.ArgumentParser) -> None:
    lp = add_command(commands, "lp", None, "provide liquidity", [common])
    sub = lp.add_subparsers(metavar="COMMAND")
    dep = add_command(sub, "deposit", _deposit, "deposit a pool token for LP tokens", [common, tx])
    dep.add_argument("symbol", metavar="SYMBOL")
    dep.add_argument("amount", metavar="AMOUNT")
    dep.add_argument("--min-lp", metavar="X", help="least LP tokens to accept")
    _slippage(dep, "--min-lp")
    wd = add_command(sub, "withdraw", _withdraw, "burn LP tokens for a pool token", [common, tx])
    wd.add_argument("symbol", metavar="SYMBOL")
    wd.add_argument("lp_amount", metavar="LP_AMOUNT")
    wd.add_argument("--min-out", metavar="X", help="least tokens to accept")
    _slippage(wd, "--min-out")
    quote = add_command(sub, "quote", None, "quote a deposit or withdrawal", [common])
    qsub = quote.add_subparsers(metavar="COMMAND")
    qd = add_command(qsub, "deposit", _quote_deposit, "LP tokens for AMOUNT of SYMBOL", [common])
    qd.add_argument("symbol", metavar="SYMBOL")
    qd.add_argument("amount", metavar="AMOUNT")
    qw = add_command(qsub, "withdraw", _quote_withdraw, "SYMBOL out for LP_AMOUNT", [common])
    qw.add_argument("symbol", metavar="SYMBOL")
    qw.add_argument("lp_amount", metavar="LP_AMOUNT")
