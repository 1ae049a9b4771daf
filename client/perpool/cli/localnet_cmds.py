"""``perpool localnet ...``: time control of a running perpool-localnet."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from perpool.cli.app import Ctx, Output, add_command
from perpool.errors import InputError
from perpool.localnet import LocalnetRpc


def _clock_line(console: Console, data: dict[str, Any]) -> None:
    console.print(f"slot {data['slot']}, unix_timestamp {data['unixTimestamp']}", highlight=False)


async def _time_advance(ctx: Ctx, args: argparse.Namespace) -> Output:
    if args.seconds < 0:
        raise InputError("SECONDS must not be negative")
    async with LocalnetRpc(ctx.url) as rpc:
        return Output((await rpc.advance_clock(args.seconds)).to_json(), _clock_line)


async def _time_set(ctx: Ctx, args: argparse.Namespace) -> Output:
    async with LocalnetRpc(ctx.url) as rpc:
        return Output((await rpc.set_clock(args.timestamp)).to_json(), _clock_line)


async def _slots_advance(ctx: Ctx, args: argparse.Namespace) -> Output:
    if args.slots < 1:
        raise InputError("N must be at least 1")
    async with LocalnetRpc(ctx.url) as rpc:
        return Output((await rpc.warp_slots(args.slots)).to_json(), _clock_line)


def _clock_full(console: Console, data: dict[str, Any]) -> None:
    console.print(
        f"slot {data['slot']}, epoch {data['epoch']}, unix_timestamp {data['unixTimestamp']}",
        highlight=False,
    )


async def _clock_show(ctx: Ctx, args: argparse.Namespace) -> Output:
    async with LocalnetRpc(ctx.url) as rpc:
        clock = await rpc.get_clock()
    data = {"slot": clock.slot, "epoch": clock.epoch, "unixTimestamp": clock.unix_timestamp}
    return Output(data, _clock_full)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    localnet = add_command(
        commands, "localnet", None, "control a running perpool-localnet", [common]
    )
    sub = localnet.add_subparsers(metavar="COMMAND")
    time_p = add_command(sub, "time", None, "the Clock's unix_timestamp", [common])
    time_cmds = time_p.add_subparsers(metavar="COMMAND")
    advance = add_command(
        time_cmds, "advance", _time_advance, "move the clock forward by SECONDS", [common]
    )
    advance.add_argument("seconds", type=int, metavar="SECONDS")
    set_p = add_command(time_cmds, "set", _time_set, "set the clock to a unix timestamp", [common])
    set_p.add_argument("timestamp", type=int, metavar="UNIX_TIMESTAMP")
    slots = add_command(sub, "slots", None, "slot control", [common])
    slots_cmds = slots.add_subparsers(metavar="COMMAND")
    warp = add_command(slots_cmds, "advance", _slots_advance, "warp forward by N slots", [common])
    warp.add_argument("slots", type=int, metavar="N")
    add_command(sub, "clock", _clock_show, "show the current Clock sysvar", [common])
