"""Startup time of the built validator: launch → first ``getHealth`` answer of ``"ok"``.

    .venv/bin/python bench/startup.py --runs 10

Every run uses a fresh temporary ledger directory and a free port on 127.0.0.1. The binary is
not built here; run ./scripts/setup.sh first.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from perpool.localnet import LocalnetError, find_validator, free_port

HEALTH = {"jsonrpc": "2.0", "id": 1, "method": "getHealth"}


def one_run(binary: Path, timeout: float, poll_interval: float) -> float:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ledger = Path(tempfile.mkdtemp(prefix="perpool-bench-"))
    stderr_path = ledger / "stderr.log"
    with open(stderr_path, "wb") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(binary), "--port", str(port), "--ledger", str(ledger), "--quiet"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        with httpx.Client(timeout=1.0) as http:
            while True:
                try:
                    if http.post(url, json=HEALTH).json().get("result") == "ok":
                        return time.perf_counter() - started
                except (httpx.HTTPError, ValueError):
                    pass
                if process.poll() is not None:
                    err = stderr_path.read_text(errors="replace")
                    raise LocalnetError(
                        f"validator exited with {process.returncode}: {err[-2000:]}"
                    )
                if time.perf_counter() - started > timeout:
                    raise LocalnetError(f"no getHealth answer within {timeout}s")
                time.sleep(poll_interval)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(ledger, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="perpool-localnet startup time")
    parser.add_argument("--runs", type=int, default=10, help="number of launches (default 10)")
    parser.add_argument("--binary", type=Path, help="validator binary (default: the release build)")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-run limit in seconds")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="getHealth poll interval")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 1000:
        parser.error("--runs must be between 1 and 1000")

    try:
        binary = args.binary or find_validator()
        times = []
        for i in range(args.runs):
            elapsed = one_run(binary, args.timeout, args.poll_ms / 1000)
            times.append(elapsed)
            print(f"run {i + 1:3d}: {elapsed * 1000:8.1f} ms", flush=True)
    except LocalnetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    summary = {
        "binary": str(binary),
        "runs": len(times),
        "median_ms": round(statistics.median(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "all_ms": [round(t * 1000, 1) for t in times],
    }
    print(
        f"startup to first getHealth: median {summary['median_ms']} ms, "
        f"min {summary['min_ms']} ms, max {summary['max_ms']} ms over {summary['runs']} runs"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
