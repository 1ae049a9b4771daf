"""``perpool open|close|collateral|swap`` and ``perpool quote open|close|swap``."""

from __future__ import annotations

import argparse
from typing import Any

from perpool import trade_actions as ta
from perpool.cli.app import Ctx, Output, add_command, simulate
from perpool.cli.output import key_values

SIDES = ("long", "short")


def _sizing(args: argparse.Namespace) -> ta.Sizing:
    return ta.Sizing(size_usd=args.size, leverage=args.leverage, units=args.units)


async def _open(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    result = await ta.open_position(
        ex,
        ctx.keypair(),
        args.symbol,
        args.side,
        collateral_text=args.collateral,
        collateral_symbol=args.collateral_token,
        sizing=_sizing(args),
        slippage_bps=args.slippage_bps,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values(f"opened {args.side} {result.fields['symbol']}"))


async def _close(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    result = await ta.close_position(
        ex,
        ctx.keypair(),
        args.symbol,
        args.side,
        fraction=args.fraction,
        slippage_bps=args.slippage_bps,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values(f"closed {args.side} {result.fields['symbol']}"))


async def _collateral(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    action = ta.add_collateral if args.action == "add" else ta.remove_collateral
    result = await action(
        ex,
        ctx.keypair(),
        args.symbol,
        args.side,
        args.amount,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values(f"collateral {args.action}"))


async def _swap(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange()
    result = await ta.swap(
        ex,
        ctx.keypair(),
        args.from_symbol,
        args.to_symbol,
        args.amount,
        min_out_text=args.min_out,
        slippage_bps=args.slippage_bps,
        simulate=simulate(args),
        status=ctx.status,
    )
    return Output(result.to_json(), key_values("swap"))


async def _quote_open(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await ta.quote_open(
        ex,
        args.symbol,
        args.side,
        collateral_text=args.collateral,
        collateral_symbol=args.collateral_token,
        sizing=_sizing(args),
    )
    return Output(result.to_json(), key_values("open quote"))


async def _quote_close(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await ta.quote_close(
        ex, ctx.owner(args.owner), args.symbol, args.side, fraction=args.fraction
    )
    return Output(result.to_json(), key_values("close quote"))


async def _quote_swap(ctx: Ctx, args: argparse.Namespace) -> Output:
    ex = await ctx.exchange(signer=False)
    result = await ta.quote_swap(ex, args.from_symbol, args.to_symbol, args.amount)
    return Output(result.to_json(), key_values("swap quote"))


def _market_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("symbol", metavar="SYMBOL")
    p.add_argument("side", choices=SIDES)


def _open_args(p: argparse.ArgumentParser) -> None:
    _market_args(p)
    p.add_argument("--collateral", required=True, metavar="AMOUNT", help="collateral tokens")
    p.add_argument(
        "--collateral-token",
        metavar="SYMBOL",
        help="collateral of a short (a stable token; default: the pool's first)",
    )
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--size", metavar="USD", help="position size in USD")
    size.add_argument("--leverage", metavar="X", help="size = X times the net collateral")
    size.add_argument("--units", metavar="U", help="size = U units of the asset at its price")


def _slippage(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--slippage-bps",
        type=int,
        default=ta.DEFAULT_SLIPPAGE_BPS,
        metavar="N",
        help=f"price limit / least output N bps from the quote (default {ta.DEFAULT_SLIPPAGE_BPS})",
    )


def _fraction(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fraction", default="1", metavar="F", help="part to close, 0 < F <= 1")


def _swap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("from_symbol", metavar="FROM")
    p.add_argument("to_symbol", metavar="TO")
    p.add_argument("amount", metavar="AMOUNT", help="FROM tokens to pay")


def register(commands: Any, common: argparse.ArgumentParser, tx: argparse.ArgumentParser) -> None:
    op = add_command(commands, "open", _open, "open a position", [common, tx])
    _open_args(op)
    _slippage(op)
    cl = add_command(commands, "close", _close, "close a position (or part of it)", [common, tx])
    _market_args(cl)
    _fraction(cl)
    _slippage(cl)
    co = add_command(
        commands,
        "collateral",
        _collateral,
        "add collateral (AMOUNT in collateral tokens) or remove it (AMOUNT in USD)",
        [common, tx],
    )
    co.add_argument("action", choices=("add", "remove"))
    _market_args(co)
    co.add_argument("amount", metavar="AMOUNT")
    sw = add_command(commands, "swap", _swap, "swap one pool token for another", [common, tx])
    _swap_args(sw)
    sw.add_argument("--min-out", metavar="X", help="least TO tokens to accept")
    _slippage(sw)

    quote = add_command(commands, "quote", None, "quote a trade without sending", [common])
    qsub = quote.add_subparsers(metavar="COMMAND")
    _open_args(add_command(qsub, "open", _quote_open, "entry price, fee, leverage", [common]))
    qc = add_command(qsub, "close", _quote_close, "exit price, PnL, fees, payout", [common])
    _market_args(qc)
    _fraction(qc)
    qc.add_argument("--owner", metavar="PUBKEY", help="position owner (default: the keypair's)")
    _swap_args(add_command(qsub, "swap", _quote_swap, "amount out and fee", [common]))
