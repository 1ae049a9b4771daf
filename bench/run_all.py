"""Every benchmark several times: medians and spread over the runs, as JSON and as a markdown
table for BENCHMARKS.md.

    .venv/bin/python bench/run_all.py                       # 3 runs of each (about 8 minutes)
    .venv/bin/python bench/run_all.py --runs 5 --update-benchmarks
    .venv/bin/python bench/run_all.py --only tps,cli --runs 2

One run of the set is: ``startup.py`` (10 launches), ``tps.py`` (transfer, swap and
open/close trade; 1 and 4 processes, 300 transactions each), ``cli_latency.py`` (every command
3 times), ``keeper_eval.py`` (1k/10k/100k positions), ``keeper_lag.py`` (5 rounds) and
``load.py`` (8 traders, 2 LPs, 10 tx/s, 45 s, keeper running). The runs are interleaved (run 1
of every benchmark, then run 2, ...), so a burst of other load on the machine does not land on
one benchmark only. Each benchmark starts its own validator (default 400 ms slots) and writes
its JSON under ``bench/results/run_all/``, with its output in a ``.log`` beside it.

From each run one figure per metric is taken (the script's own median where it reports
several samples); the summary gives per metric the median over the runs, the min-max spread
and every run's value: ``bench/results/summary.json`` and ``bench/results/summary.md``.
``--update-benchmarks`` also replaces the part of BENCHMARKS.md between the markers
``<!-- run_all:begin -->`` and ``<!-- run_all:end -->`` with the table. ``--reaggregate``
runs nothing and rebuilds the summary from the JSON of the last runs. Exits 1 when a
benchmark failed (the others still run) or the load test found an invariant violated.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    machine,
    markdown_table,
    spread,
    write_json,
)

BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
Metrics = dict[str, tuple[float, str]]
"""metric label → (value, unit)."""


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    args: list[str]
    extract: Callable[[Any], Metrics]


def _startup(data: Any) -> Metrics:
    return {"launch → first getHealth, median of 10": (data["median_ms"], "ms")}


def _tps(data: Any) -> Metrics:
    out: Metrics = {}
    for r in data["rounds"]:
        procs = "1 process" if r["processes"] == 1 else f"{r['processes']} processes"
        label = f"{r['instruction']}, {procs}"
        out[f"{label}: landed TPS"] = (r["tps"], "tx/s")
        out[f"{label}: send rate"] = (r["send_rate"], "tx/s")
        if r["processes"] == 1 and r.get("validator_cpu_ms_per_tx") is not None:
            out[f"{r['instruction']}: validator CPU per transaction"] = (
                r["validator_cpu_ms_per_tx"],
                "ms",
            )
    return out


def _cli(data: Any) -> Metrics:
    return {
        f"perpool {' '.join(c['argv'][1:]).replace(' --json', '')}": (c["median_ms"], "ms")
        for c in data["commands"].values()
    }


def _keeper_eval(data: Any) -> Metrics:
    out: Metrics = {}
    for row in data["sizes"]:
        out[f"{row['positions']:,} positions: evaluation (best)"] = (
            row["seconds_best"] * 1000,
            "ms",
        )
    return out


def _keeper_lag(data: Any) -> Metrics:
    return {
        "price post → liquidation landed, median of rounds": (data["lag_ms_median"], "ms"),
        "price post → liquidation landed, slots": (data["lag_slots_median"], "slots"),
    }


def _load(data: Any) -> Metrics:
    tp, lat = data["throughput"], data["latency"]["overall"]
    failed = tp["rejected"] + tp["failed_on_chain"] + tp["timeouts"] + tp["rpc_errors"]
    return {
        "attempted": (tp["attempted_per_s"], "tx/s"),
        "landed": (tp["landed_per_s"], "tx/s"),
        "latency p50 (send → confirmed)": (lat.get("p50_ms", float("nan")), "ms"),
        "latency p90": (lat.get("p90_ms", float("nan")), "ms"),
        "latency p99": (lat.get("p99_ms", float("nan")), "ms"),
        "failed (of attempted)": (100 * failed / max(tp["attempted"], 1), "%"),
        "keeper liquidations": (data["keeper"].get("liquidations", {}).get("total", 0), ""),
        "invariants hold (1 = yes)": (1 if data["invariants"]["ok"] else 0, ""),
    }


# Per benchmark: name, title, what its JSON yields, the script and its arguments, and the
# tiny arguments of ``--quick`` (a smoke test of this script).
BENCHES: list[tuple[str, str, Callable[[Any], Metrics], str, list[str], list[str]]] = [
    ("startup", "Startup", _startup, "startup.py", ["--runs", "10"], ["--runs", "3"]),
    (
        "tps",
        "Throughput",
        _tps,
        "tps.py",
        ["--processes", "1,4", "--count", "300"],
        ["--processes", "1", "--count", "50", "--concurrency", "8"],
    ),
    (
        "cli",
        "CLI latency",
        _cli,
        "cli_latency.py",
        ["--runs", "3"],
        ["--runs", "1", "--commands", "version,pool,swap"],
    ),
    (
        "keeper_eval",
        "Keeper evaluation",
        _keeper_eval,
        "keeper_eval.py",
        ["--sizes", "1000,10000,100000", "--repeat", "3"],
        ["--sizes", "1000", "--repeat", "1"],
    ),
    (
        "keeper_lag",
        "Liquidation lag",
        _keeper_lag,
        "keeper_lag.py",
        ["--rounds", "5"],
        ["--rounds", "1"],
    ),
    (
        "load",
        "Load",
        _load,
        "load.py",
        ["--traders", "8", "--lps", "2", "--rate", "10", "--seconds", "45"],
        ["--traders", "2", "--lps", "1", "--rate", "4", "--seconds", "10"],
    ),
]


def benches(quick: bool) -> list[Bench]:
    """The benchmark set; ``quick`` shrinks every one of them (a smoke test of this script)."""
    return [
        Bench(name, title, [script, *(small if quick else full)], extract)
        for name, title, extract, script, full, small in BENCHES
    ]


def run_one(bench: Bench, run: int, out_dir: Path, timeout: float) -> tuple[Metrics, float]:
    json_path = out_dir / f"{bench.name}.{run}.json"
    log_path = out_dir / f"{bench.name}.{run}.log"
    json_path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(BENCH_DIR / bench.args[0]),
        *bench.args[1:],
        "--json",
        str(json_path),
    ]
    started = time.monotonic()
    with log_path.open("w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        code = subprocess.run(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        ).returncode
    elapsed = time.monotonic() - started
    if not json_path.exists():
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{bench.name} run {run} exited {code} without results:\n{tail}")
    return bench.extract(json.loads(json_path.read_text())), elapsed


def fmt(value: float, unit: str, *, with_unit: bool = True) -> str:
    if value != value:  # NaN
        return "n/a"
    if unit == "tx/s" or unit == "%":
        text = f"{value:,.1f}"
    elif unit == "ms":
        if value < 10:
            text = f"{value:,.2f}"
        else:
            text = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    else:
        text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    if unit == "slots" and value == 1:
        unit = "slot"
    return f"{text} {unit}".strip() if with_unit else text


def summary_markdown(summary: dict[str, Any], command: str) -> str:
    m = summary["machine"]
    lines = [
        f"Generated by `{command}` on {m['time']}: {summary['runs']} runs of each benchmark, "
        + (
            "interleaved. "
            if summary.get("reaggregated")
            else f"interleaved, {summary['total_minutes']} min in all. "
        )
        + f"Machine: {m['cpu']}, "
        f"{m['cpus']} CPUs, {m['memory_gib']} GiB, {m['os']}, Linux {m['kernel']}, "
        f"Python {m['python']}; commit {m['commit']}; load average "
        f"{' / '.join(str(x) for x in m['load_average'])} at the start, "
        f"{' / '.join(str(x) for x in summary['load_average_after'])} at the end. "
        "Median over the runs, "
        "min-max spread, and each run's value; 400 ms slots.",
        "",
    ]
    rows = []
    for bench in summary["benchmarks"]:
        for label, s in bench["metrics"].items():
            unit = s["unit"]
            rows.append(
                [
                    bench["title"],
                    label,
                    fmt(s["median"], unit),
                    f"{fmt(s['min'], unit, with_unit=False)}-{fmt(s['max'], unit)}",
                    " / ".join(fmt(v, unit, with_unit=False) for v in s["values"]),
                ]
            )
        if bench["failures"]:
            rows.append([bench["title"], "failed runs", str(len(bench["failures"])), "", ""])
    lines.append(markdown_table(["Benchmark", "Metric", "Median", "Spread", "Runs"], rows))
    return "\n".join(lines) + "\n"


def update_benchmarks(path: Path, table: str) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: {path} has no {BEGIN} … {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run every benchmark several times")
    parser.add_argument("--runs", type=int, default=3, help="runs of each benchmark")
    parser.add_argument("--only", help="comma-separated subset: startup,tps,cli,...")
    parser.add_argument("--quick", action="store_true", help="tiny parameters (smoke test)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per benchmark run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="output directory")
    parser.add_argument(
        "--update-benchmarks", action="store_true", help="rewrite BENCHMARKS.md's marked section"
    )
    parser.add_argument(
        "--reaggregate",
        action="store_true",
        help="run nothing: summarize the runs' JSON already under OUT/run_all/",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 50:
        parser.error("--runs: between 1 and 50")
    selected = benches(args.quick)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {b.name for b in selected}
        if unknown:
            parser.error(f"--only: unknown {sorted(unknown)}")
        selected = [b for b in selected if b.name in wanted]

    out_dir = args.out / "run_all"
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine()
    if not args.reaggregate:
        write_json(out_dir / "machine.start.json", info)
    started = time.monotonic()
    values: dict[str, dict[str, list[float]]] = {b.name: {} for b in selected}
    units: dict[str, dict[str, str]] = {b.name: {} for b in selected}
    failures: dict[str, list[str]] = {b.name: [] for b in selected}
    durations: dict[str, list[float]] = {b.name: [] for b in selected}
    for run in range(1, args.runs + 1):
        for bench in selected:
            print(f"[run {run}/{args.runs}] {bench.name} ...", end=" ", flush=True)
            try:
                if args.reaggregate:
                    path = out_dir / f"{bench.name}.{run}.json"
                    if not path.exists():
                        raise RuntimeError(f"{path} does not exist")
                    metrics, elapsed = bench.extract(json.loads(path.read_text())), 0.0
                else:
                    metrics, elapsed = run_one(bench, run, out_dir, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
                failures[bench.name].append(f"run {run}: {exc}")
                print(f"FAILED\n{exc}", flush=True)
                continue
            durations[bench.name].append(round(elapsed, 1))
            for label, (value, unit) in metrics.items():
                values[bench.name].setdefault(label, []).append(value)
                units[bench.name][label] = unit
            print(f"{elapsed:.0f} s", flush=True)

    start_file, end_file = out_dir / "machine.start.json", out_dir / "machine.end.json"
    if args.reaggregate and start_file.exists() and end_file.exists():
        # The machine as the runs saw it.
        info = json.loads(start_file.read_text())
        after = json.loads(end_file.read_text())["load_average"]
    else:
        after = machine()["load_average"]
        if not args.reaggregate:
            write_json(end_file, machine())
    summary: dict[str, Any] = {
        "runs": args.runs,
        "quick": args.quick,
        "reaggregated": args.reaggregate,
        "machine": info,
        "load_average_after": after,
        "total_minutes": round((time.monotonic() - started) / 60, 1),
        "benchmarks": [
            {
                "name": b.name,
                "title": b.title,
                "command": " ".join(["bench/" + b.args[0], *b.args[1:]]),
                "seconds_per_run": durations[b.name],
                "failures": failures[b.name],
                "metrics": {
                    label: {**spread(vals), "unit": units[b.name][label]}
                    for label, vals in values[b.name].items()
                },
            }
            for b in selected
        ],
    }
    command = "bench/run_all.py" + (f" --runs {args.runs}" if args.runs != 3 else "")
    if args.quick:
        command += " --quick"
    table = summary_markdown(summary, command)
    write_json(args.out / "summary.json", summary)
    (args.out / "summary.md").write_text(table)
    print("\n" + table)
    print(f"summary: {args.out / 'summary.json'}, {args.out / 'summary.md'}")
    if args.update_benchmarks:
        update_benchmarks(REPO_ROOT / "BENCHMARKS.md", table)
        print("BENCHMARKS.md updated")
    load = values.get("load", {}).get("invariants hold (1 = yes)", [])
    if any(failures.values()) or any(v != 1 for v in load):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
