"""``perpool-keeper``: the keeper daemon's command line (a thin shell over :mod:`.daemon`).

perpool-keeper --config keeper.toml            # run until SIGTERM/SIGINT
perpool-keeper --config keeper.toml --once     # every job once, print a JSON summary
perpool-keeper --config keeper.toml --dry-run  # simulate transactions, send nothing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from perpool.config import ConfigError
from perpool_keeper.config import KeeperConfigError, load_config
from perpool_keeper.daemon import Keeper
from perpool_keeper.logs import setup_logging


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="perpool-keeper",
        description="Perpool keeper: oracle posting, borrow/funding accrual, liquidations, AUM.",
    )
    p.add_argument("--config", "-c", help="TOML config file (env: PERPOOL_KEEPER__SECTION__KEY)")
    p.add_argument("--once", action="store_true", help="run every job once and exit")
    p.add_argument("--dry-run", action="store_true", help="simulate transactions, send nothing")
    p.add_argument("--url", action="append", help="RPC URL (repeat for failover order)")
    p.add_argument("--keypair", help="keeper keypair file (payer and liquidator)")
    p.add_argument("--port", type=int, help="HTTP port of /metrics and /health (0 = any)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except KeeperConfigError as exc:
        print(f"perpool-keeper: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        config.keeper.dry_run = True
    if args.url:
        config.rpc.urls = list(args.url)
    if args.keypair:
        config.keeper.keypair = args.keypair
    if args.port is not None:
        config.http.port = args.port
    setup_logging(config.keeper.log_level)
    try:
        keeper = Keeper(config)
    except (ConfigError, ValueError) as exc:
        print(f"perpool-keeper: {exc}", file=sys.stderr)
        return 2
    if args.once:
        summary = asyncio.run(keeper.run_once())
        print(json.dumps(summary, indent=2, default=str))
        return 0 if summary.get("ok") else 1
    asyncio.run(_serve(keeper))
    return 0


async def _serve(keeper: Keeper) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await keeper.run(stop)


if __name__ == "__main__":
    raise SystemExit(main())
