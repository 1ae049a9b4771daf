"""CLI plumbing: common options, settings, the one-JSON-object output contract, error exits.

A command handler is ``async def handler(ctx, args) -> Output``; it gets its connection, keypair
and pool through ``ctx`` (created lazily, so commands that need no keypair work without one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
from rich.console import Console
from solana.exceptions import SolanaRpcException
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpool import pda
from perpool.client import PerpoolClient
from perpool.config import CliSettings, ConfigError, resolve_settings
from perpool.errors import InputError, PerpoolError, RpcUnreachable
from perpool.exchange import Exchange, fetch_decoded
from perpool.localnet import LocalnetError
from perpool.spec import PoolSpec, SpecError, default_spec_path, load_spec


class UsageError(Exception):
    """A command line argparse rejects; exits 2 like argparse, as JSON with ``--json``."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


@dataclass
class Output:
    """What a handler returns: the JSON object, and how to show it to a human."""

    data: dict[str, Any]
    render: Callable[[Console, dict[str, Any]], None] | None = None


@dataclass
class Ctx:
    args: argparse.Namespace
    settings: CliSettings
    as_json: bool
    out: Console
    err: Console
    _client: PerpoolClient | None = None
    _keypair: Keypair | None = None
    _spec: PoolSpec | None = None
    _status: Any = field(default=None)

    @property
    def url(self) -> str:
        return self.settings.url

    def keypair(self) -> Keypair:
        if self._keypair is None:
            try:
                self._keypair = self.settings.load_keypair()
            except ConfigError as exc:
                raise PerpoolError(str(exc), code="keypair_missing") from exc
        return self._keypair

    def client(self, *, signer: bool = True) -> PerpoolClient:
        """A client paying with the keypair; read-only commands may run without one."""
        if self._client is None:
            try:
                payer = self.keypair()
            except PerpoolError:
                if signer:
                    raise
                payer = Keypair()  # only signs simulations of views
            self._client = PerpoolClient.connect(self.url, payer)
        return self._client

    def spec(self) -> PoolSpec:
        if self._spec is None:
            given = getattr(self.args, "config", None)
            self._spec = load_spec(Path(given).expanduser() if given else default_spec_path())
        return self._spec

    async def exchange(self, *, signer: bool = True) -> Exchange:
        client = self.client(signer=signer)
        ex = await Exchange.load(client, self.spec())
        if not signer:
            await use_funded_view_payer(client)
        return ex

    def owner(self, text: str | None) -> Pubkey:
        """``--owner``/``--to`` if given, else the keypair's address."""
        if text:
            try:
                return Pubkey.from_string(text)
            except ValueError as exc:
                raise InputError(f"{text!r} is not a base58 address") from exc
        return self.keypair().pubkey()

    def status(self, message: str) -> None:
        """Spinner text on stderr while waiting (humans only)."""
        if self._status is not None:
            self._status.update(f"[bold]{message}")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


async def use_funded_view_payer(client: PerpoolClient) -> None:
    """Views are simulated transactions and need a fee payer that exists; without a funded
    keypair, borrow the oracle authority's address (nothing is signed or sent)."""
    if (await client.connection.get_balance(client.payer.pubkey())).value > 0:
        return
    perpool = await fetch_decoded(client, "Perpool", pda.perpool())
    if perpool is not None:
        client.view_payer = perpool.oracle_authority


Handler = Callable[[Ctx, argparse.Namespace], Awaitable[Output]]


def common_options() -> argparse.ArgumentParser:
    # Defaults are SUPPRESSed so that the options may appear before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS
    common.add_argument(
        "-u",
        "--url",
        default=s,
        help="JSON-RPC URL or moniker (localhost, devnet, ...); default: $PERPOOL_RPC_URL, "
        "the Solana CLI config, http://127.0.0.1:8899",
    )
    common.add_argument(
        "-k",
        "--keypair",
        default=s,
        help="signer keypair file; default: $PERPOOL_KEYPAIR, the Solana CLI config, "
        "~/.config/solana/id.json",
    )
    common.add_argument(
        "--solana-config",
        default=s,
        metavar="PATH",
        help="Solana CLI config file (default: $SOLANA_CONFIG or ~/.config/solana/cli/config.yml)",
    )
    common.add_argument(
        "--config",
        default=s,
        metavar="POOL.toml",
        help="pool spec naming the pool and its symbols (default: $PERPOOL_POOL_CONFIG or the "
        "shipped localnet spec)",
    )
    common.add_argument(
        "--json", action="store_true", default=s, help="print exactly one JSON object"
    )
    return common


def tx_options() -> argparse.ArgumentParser:
    tx = argparse.ArgumentParser(add_help=False)
    tx.add_argument(
        "--simulate",
        action="store_true",
        default=argparse.SUPPRESS,
        help="simulate: print the result and logs, send nothing",
    )
    return tx


def simulate(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "simulate", False))


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, sort_keys=False) + "\n")
    sys.stdout.flush()


def _error_output(exc: PerpoolError, as_json: bool, err: Console) -> int:
    if as_json:
        emit_json({"error": exc.to_json()})
    else:
        err.print(
            f"[bold red]error:[/] {exc.message}", markup=True, highlight=False, soft_wrap=True
        )
        logs = exc.details.get("logs") if isinstance(exc.details, dict) else None
        for line in logs or []:
            err.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    return exc.exit_code


def run_command(argv: Sequence[str], parser: argparse.ArgumentParser) -> int:
    as_json = "--json" in argv
    err = Console(stderr=True)
    try:
        args = parser.parse_args(list(argv))
    except UsageError as exc:
        if as_json:
            emit_json({"error": {"code": "usage", "message": str(exc)}})
        else:
            err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            err.print("(see --help)", markup=False, highlight=False)
        return 2
    if args.handler is None:
        args.usage_of.print_help(sys.stderr)
        return 2
    as_json = bool(getattr(args, "json", False))
    try:
        settings = resolve_settings(
            getattr(args, "url", None),
            getattr(args, "keypair", None),
            getattr(args, "solana_config", None),
        )
    except ConfigError as exc:
        return _error_output(PerpoolError(str(exc), code="config_error"), as_json, err)
    # Piped output gets wide tables rather than truncated columns.
    out = Console() if sys.stdout.isatty() else Console(width=200, soft_wrap=True)
    ctx = Ctx(args=args, settings=settings, as_json=as_json, out=out, err=err)
    try:
        output = asyncio.run(_run(ctx, args.handler))
    except PerpoolError as exc:
        return _error_output(exc, as_json, err)
    except (SpecError, ConfigError) as exc:
        return _error_output(PerpoolError(str(exc), code="config_error"), as_json, err)
    except LocalnetError as exc:
        return _error_output(RpcUnreachable(str(exc)), as_json, err)
    except (SolanaRpcException, httpx.TransportError, OSError) as exc:
        reason = exc.__cause__ or exc
        detail = f"{type(reason).__name__} {reason}".strip()
        unreachable = RpcUnreachable(f"cannot reach {settings.url}: {detail}")
        return _error_output(unreachable, as_json, err)
    except Exception as exc:  # the one-object contract holds even for bugs
        if os.environ.get("PERPOOL_DEBUG"):
            raise
        internal = PerpoolError(f"internal error: {type(exc).__name__}: {exc}", code="internal")
        return _error_output(internal, as_json, err)
    if as_json:
        emit_json(output.data)
    elif output.render is not None:
        output.render(ctx.out, output.data)
    return 0


async def _run(ctx: Ctx, handler: Handler) -> Output:
    try:
        if ctx.as_json or not ctx.err.is_terminal:
            return await handler(ctx, ctx.args)
        with ctx.err.status("[bold]working", spinner="dots") as status:
            ctx._status = status
            return await handler(ctx, ctx.args)
    finally:
        ctx._status = None
        await ctx.close()


def add_command(
    subparsers: Any,
    name: str,
    handler: Handler | None,
    help_text: str,
    parents: Sequence[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, parents=list(parents)
    )
    parser.set_defaults(handler=handler, usage_of=parser)
    return parser
