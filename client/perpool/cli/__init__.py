"""Command-line entry points: ``perpool`` and ``perpool-localnet``.

Thin shells over the async library: one module per command group, plumbing in :mod:`.app`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from perpool import __version__
from perpool.cli import admin_cmds, info_cmds, localnet_cmds, lp_cmds, trade_cmds, wallet_cmds
from perpool.cli.app import Parser, common_options, run_command, tx_options
from perpool.localnet import LocalnetError, ensure_validator


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    tx = tx_options()
    parser = Parser(
        prog="perpool",
        description="Perpool command-line client: liquidity, trading and pool administration.",
        parents=[common],
    )
    parser.set_defaults(handler=None, usage_of=parser)
    parser.add_argument("--version", action="version", version=f"perpool {__version__}")
    commands = parser.add_subparsers(metavar="COMMAND")
    admin_cmds.register(commands, common, tx)
    wallet_cmds.register(commands, common, tx)
    lp_cmds.register(commands, common, tx)
    trade_cmds.register(commands, common, tx)
    info_cmds.register(commands, common)
    localnet_cmds.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(list(sys.argv[1:] if argv is None else argv), build_parser())


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


__all__ = ["build_parser", "localnet_main", "main"]
