"""Command-line entry points: ``perpool`` and ``perpool-localnet``.

Thin shells over the async library; all logic lives in :mod:`perpool.localnet`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from perpool import __version__
from perpool.localnet import (
    ClockState,
    LocalnetError,
    LocalnetRpc,
    default_url,
    ensure_validator,
)

_T = TypeVar("_T")


def _common_options() -> argparse.ArgumentParser:
    # Defaults are SUPPRESSed so that the options may appear before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="JSON-RPC URL (default: $PERPOOL_RPC_URL or http://127.0.0.1:8899)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="perpool", description="Perpool command-line client.", parents=[common]
    )
    parser.set_defaults(handler=None, usage_of=parser)
    parser.add_argument("--version", action="version", version=f"perpool {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")

    localnet = commands.add_parser(
        "localnet", help="control a running perpool-localnet", parents=[common]
    )
    localnet.set_defaults(usage_of=localnet)
    localnet_cmds = localnet.add_subparsers(metavar="COMMAND")

    time_p = localnet_cmds.add_parser("time", help="the Clock's unix_timestamp", parents=[common])
    time_p.set_defaults(usage_of=time_p)
    time_cmds = time_p.add_subparsers(metavar="COMMAND")
    advance = time_cmds.add_parser(
        "advance", help="move the clock forward by SECONDS", parents=[common]
    )
    advance.add_argument("seconds", type=int, metavar="SECONDS")
    advance.set_defaults(handler=_time_advance, usage_of=advance)
    set_p = time_cmds.add_parser("set", help="set the clock to a unix timestamp", parents=[common])
    set_p.add_argument("timestamp", type=int, metavar="UNIX_TIMESTAMP")
    set_p.set_defaults(handler=_time_set, usage_of=set_p)

    slots_p = localnet_cmds.add_parser("slots", help="slot control", parents=[common])
    slots_p.set_defaults(usage_of=slots_p)
    slots_cmds = slots_p.add_subparsers(metavar="COMMAND")
    warp = slots_cmds.add_parser("advance", help="warp forward by N slots", parents=[common])
    warp.add_argument("slots", type=int, metavar="N")
    warp.set_defaults(handler=_slots_advance, usage_of=warp)

    clock = localnet_cmds.add_parser(
        "clock", help="show the current Clock sysvar", parents=[common]
    )
    clock.set_defaults(handler=_clock_show, usage_of=clock)
    return parser


def _print_clock(state: ClockState, as_json: bool) -> None:
    if as_json:
        print(json.dumps(state.to_json()))
    else:
        print(f"slot {state.slot}, unix_timestamp {state.unix_timestamp}")


async def _with_rpc(url: str, action: Callable[[LocalnetRpc], Awaitable[_T]]) -> _T:
    async with LocalnetRpc(url) as rpc:
        return await action(rpc)


def _time_advance(args: argparse.Namespace, url: str, as_json: bool) -> int:
    if args.seconds < 0:
        args.usage_of.error("SECONDS must not be negative")
    _print_clock(asyncio.run(_with_rpc(url, lambda rpc: rpc.advance_clock(args.seconds))), as_json)
    return 0


def _time_set(args: argparse.Namespace, url: str, as_json: bool) -> int:
    _print_clock(asyncio.run(_with_rpc(url, lambda rpc: rpc.set_clock(args.timestamp))), as_json)
    return 0


def _slots_advance(args: argparse.Namespace, url: str, as_json: bool) -> int:
    if args.slots < 1:
        args.usage_of.error("N must be at least 1")
    _print_clock(asyncio.run(_with_rpc(url, lambda rpc: rpc.warp_slots(args.slots))), as_json)
    return 0


def _clock_show(args: argparse.Namespace, url: str, as_json: bool) -> int:
    clock = asyncio.run(_with_rpc(url, lambda rpc: rpc.get_clock()))
    if as_json:
        print(
            json.dumps(
                {"slot": clock.slot, "epoch": clock.epoch, "unixTimestamp": clock.unix_timestamp}
            )
        )
    else:
        print(f"slot {clock.slot}, epoch {clock.epoch}, unix_timestamp {clock.unix_timestamp}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.handler is None:
        args.usage_of.print_help(sys.stderr)
        return 2
    url: str = getattr(args, "url", None) or default_url()
    as_json: bool = getattr(args, "json", False)
    try:
        code: int = args.handler(args, url, as_json)
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


def localnet_main(argv: Sequence[str] | None = None) -> int:
    """``perpool-localnet``: build the validator if needed, then exec it with the same arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        binary = ensure_validator()
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(binary, [str(binary), *args])


if __name__ == "__main__":
    raise SystemExit(main())
