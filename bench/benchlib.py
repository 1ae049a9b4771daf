"""Helpers shared by the benchmark scripts: statistics, tables, JSON output, the machine's
description, Prometheus text parsing and local-only URL checks."""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


# ---- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (``q`` in [0, 1]); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """n, p50, p90, p99, max and mean in milliseconds (rounded to 0.1 ms)."""
    if not seconds:
        return {"n": 0}
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p90_ms": round(percentile(ms, 0.90), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, and the interquartile range of several runs' results."""
    if not values:
        return {"runs": 0}
    return {
        "runs": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "q1": percentile(values, 0.25),
        "q3": percentile(values, 0.75),
        "values": list(values),
    }


# ---- output ------------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    out = [line(cells[0]), line(["-" * w for w in widths])]
    out += [line(row) for row in cells[1:]]
    return "\n".join(out)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(str(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---- environment -------------------------------------------------------------------------------


def check_loopback(url: str) -> None:
    """Benchmarks only run against a local node."""
    host = urlparse(url).hostname or ""
    if host not in LOOPBACK_HOSTS:
        raise SystemExit(
            f"error: {url} is not a loopback address; this benchmark only runs locally"
        )


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """CPU, memory, OS and load of this machine, and the checkout's commit."""
    cpuinfo = _read("/proc/cpuinfo")
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    meminfo = _read("/proc/meminfo")
    mem_kib = next(
        (int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0
    )
    os_name = next(
        (
            line.split("=", 1)[1].strip().strip('"')
            for line in _read("/etc/os-release").splitlines()
            if line.startswith("PRETTY_NAME=")
        ),
        platform.system(),
    )
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": git_commit(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return None
    commit = out.stdout.strip()
    if not commit:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return commit + ("+changes" if dirty else "")


def console_script(name: str) -> list[str]:
    """The command running an installed entry point of this environment (next to the
    interpreter, as in a virtualenv), else ``python -m`` its module."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return [str(candidate)]
    modules = {"perpool": "perpool.cli", "perpool-keeper": "perpool_keeper.cli"}
    return [sys.executable, "-m", modules[name]]


# ---- Prometheus text format ---------------------------------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<v>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    out: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match["v"])
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        out.append((match["name"], labels, value))
    return out


def metric_total(
    samples: Sequence[tuple[str, dict[str, str], float]], name: str, **labels: str
) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        v
        for n, ls, v in samples
        if n == name and all(ls.get(k) == want for k, want in labels.items())
    )


# ---- CPU time of processes ----------------------------------------------------------------------


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (and its reaped children) from /proc; None when
    unavailable (not Linux, the process is gone)."""
    if pid is None:
        return None
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # Fields after the command name (which may contain spaces) start at index 2.
    fields = stat.rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")
