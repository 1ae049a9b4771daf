"""``python -m perpool.demo``: the demo's command line (``./scripts/demo.sh`` runs it).

Starts a localnet (port 8899 if free, else a free port; ``--url`` uses a running fresh one
instead), runs the demo (:mod:`perpool.demo.run`) and stops the localnet.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from perpool.demo.options import DEFAULT_OUT, DROP_PCT, FULL, QUICK, SEED, STEP_MINUTES, DemoOptions
from perpool.demo.run import DemoError, run_demo, say
from perpool.errors import PerpoolError
from perpool.localnet import (
    DEFAULT_PORT,
    LocalnetError,
    LocalnetProcess,
    ensure_validator,
    free_port,
    port_is_free,
)

DEMO_SLOT_MS = 100
MAX_STEP_MINUTES = 50
"""A clock jump must leave the last prices valid (the spec's oracles accept an hour's age)
until the keeper posts the next ones."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scripts/demo.sh",
        description=(
            "Perpool demo: liquidity providers and traders on a localnet while perpool-keeper "
            "replays a price path with a sharp drop; writes a PNG report, a summary and the "
            "time series as JSON."
        ),
    )
    p.add_argument("--url", help="use a running localnet that is not initialized yet")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.steps} steps, {QUICK.traders} traders (default {FULL.steps} and "
        f"{FULL.traders})",
    )
    p.add_argument("--steps", type=int, help="steps of the price path (at least 10)")
    p.add_argument("--traders", type=int, help="number of traders")
    p.add_argument(
        "--step-minutes",
        type=int,
        default=STEP_MINUTES,
        help=f"simulated minutes per step, 1..{MAX_STEP_MINUTES} (default {STEP_MINUTES})",
    )
    p.add_argument(
        "--step-seconds",
        type=float,
        help=f"wall seconds per step (default {FULL.step_seconds:g}, quick {QUICK.step_seconds:g})",
    )
    p.add_argument("--seed", type=int, default=SEED, help=f"price path seed (default {SEED})")
    p.add_argument(
        "--drop-pct",
        type=int,
        default=DROP_PCT,
        help=f"how far SOL falls in the drop, percent (default {DROP_PCT})",
    )
    p.add_argument(
        "--slot-ms",
        type=int,
        default=DEMO_SLOT_MS,
        help=f"slot length of the localnet the demo starts (default {DEMO_SLOT_MS})",
    )
    return p


def options(args: argparse.Namespace) -> DemoOptions:
    preset = QUICK if args.quick else FULL
    opts = DemoOptions(
        out=args.out,
        steps=args.steps or preset.steps,
        traders=args.traders or preset.traders,
        step_minutes=args.step_minutes,
        step_seconds=args.step_seconds or preset.step_seconds,
        seed=args.seed,
        drop_pct=args.drop_pct,
        quick=args.quick,
    )
    if opts.steps < 10:
        raise ValueError("--steps must be at least 10")
    if opts.traders < 1:
        raise ValueError("--traders must be at least 1")
    if not 1 <= opts.step_minutes <= MAX_STEP_MINUTES:
        raise ValueError(f"--step-minutes must be between 1 and {MAX_STEP_MINUTES}")
    if opts.step_seconds < 0.5:
        raise ValueError("--step-seconds must be at least 0.5")
    if not 5 <= opts.drop_pct <= 80:
        raise ValueError("--drop-pct must be between 5 and 80")
    return opts


def _run(url: str, opts: DemoOptions) -> int:
    try:
        return asyncio.run(run_demo(url, opts))
    except (DemoError, PerpoolError, LocalnetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        opts = options(args)
    except ValueError as exc:
        p.error(str(exc))
    started = time.monotonic()
    if args.url:
        code = _run(args.url, opts)
    else:
        try:
            binary = ensure_validator()
            port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
            net = LocalnetProcess.start(binary=binary, port=port, slot_ms=args.slot_ms)
        except (LocalnetError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        with net:
            say(f"started {Path(binary).name} at {net.url} ({args.slot_ms} ms slots)")
            code = _run(net.url, opts)
        say("localnet stopped")
    say(f"demo finished in {time.monotonic() - started:.0f} s (exit {code})")
    return code
