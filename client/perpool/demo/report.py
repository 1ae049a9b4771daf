"""The demo's outputs: ``timeseries.json`` (every sample in on-chain integer units, the
liquidations, the actions, the keeper's metrics and the checks), ``summary.txt`` and
``report.png`` (matplotlib, Agg canvas, no display needed).

Figures in the JSON keep the program's units: USD with 6 decimals, token amounts in base units,
utilization and rates with 9 decimals, oracle prices as ``price`` with ``expo``. The plot and
the summary turn them into dollars and percentages for reading only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from perpool.demo.actors import Plan
from perpool.demo.options import DemoOptions
from perpool.demo.pricepath import EXPO, PricePath
from perpool.demo.sampling import FEE_KINDS, pct_change_bps
from perpool.math import OraclePrice, pricing_supply, token_to_usd_floor

FIG_SIZE_IN = (14.0, 16.0)
DPI = 100
PNG_SIZE = (int(FIG_SIZE_IN[0] * DPI), int(FIG_SIZE_IN[1] * DPI))
"""Width and height of ``report.png`` in pixels."""
JSON_NAME, SUMMARY_NAME, PNG_NAME = "timeseries.json", "summary.txt", "report.png"
USD_ONE = 10**6
RATE_ONE = 10**9
SPOT = ("SOL", "ETH", "WBTC")
COLORS = {
    "SOL": "#9945ff",
    "ETH": "#3c6fd8",
    "WBTC": "#f2a900",
    "USDC": "#0ca678",
    "USDT": "#74b816",
    "ETH2": "#d6336c",
}
DROP_COLOR = "#e03131"


@dataclass
class Report:
    options: DemoOptions
    url: str
    path: PricePath
    plan: Plan
    points: list[dict[str, Any]]
    liquidations: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    keeper: dict[str, Any]
    checks: dict[str, Any]
    wall_seconds: float

    @property
    def t0(self) -> int:
        return int(self.points[0]["chainTime"])

    def hours(self, chain_time: int) -> float:
        return (chain_time - self.t0) / 3600

    def step_hours(self, step: int) -> float:
        return self.path.hours(step)


# --------------------------------------------------------------------------------------------
# Time series
# --------------------------------------------------------------------------------------------


def hold_price(points: Sequence[dict[str, Any]]) -> list[int]:
    """Per sample: what one LP token of the first sample would be worth had the pool kept its
    first tokens (the owned amounts of the first sample at each sample's oracle prices), USD,
    priced like the program prices it (with the locked LP)."""
    first = points[0]
    supply = first["lpSupply"]
    out = []
    for point in points:
        value = 0
        for symbol, c0 in first["custodies"].items():
            now = point["custodies"][symbol]
            if c0["synthetic"] or now["price"] is None:
                continue
            price = OraclePrice(now["price"], now["expo"])
            value += token_to_usd_floor(c0["owned"], c0["decimals"], price)
        out.append(value * USD_ONE // pricing_supply(supply) if supply else 0)
    return out


def series(points: Sequence[dict[str, Any]], t0: int) -> dict[str, Any]:
    """The samples as columns (one list per measure, aligned on ``step``)."""
    symbols = list(points[0]["custodies"])

    def col(key: str) -> list[Any]:
        return [p[key] for p in points]

    def per(key: str) -> dict[str, list[Any]]:
        return {s: [p["custodies"][s][key] for p in points] for s in symbols}

    return {
        "step": col("step"),
        "chainTime": col("chainTime"),
        "hours": [round((p["chainTime"] - t0) / 3600, 4) for p in points],
        "aumUsd": col("aumUsd"),
        "aumCachedUsd": col("aumCachedUsd"),
        "lpSupply": col("lpSupply"),
        "lpPriceUsd": col("lpPriceUsd"),
        "holdPriceUsd": hold_price(points),
        "price": per("price"),
        "priceExpo": per("expo"),
        "utilization": per("utilization"),
        "openInterestLongUsd": col("longOiUsd"),
        "openInterestShortUsd": col("shortOiUsd"),
        "openInterestLongBySymbolUsd": per("longOiUsd"),
        "openInterestShortBySymbolUsd": per("shortOiUsd"),
        "fees": {
            **{kind: [p["fees"][kind] for p in points] for kind in FEE_KINDS},
            "protocol": col("protocolFeesUsd"),
        },
        "insuranceFundUsd": col("insuranceUsd"),
        "borrowRateHourly": per("borrowRateHourly"),
        "fundingRateHourly": per("fundingRateHourly"),
        "liquidations": col("liquidations"),
        "liquidationsFull": col("liquidationsFull"),
        "liquidationVolumeUsd": col("liquidationVolumeUsd"),
        "badDebtUsd": col("badDebtUsd"),
    }


def key_figures(report: Report) -> dict[str, Any]:
    first, last = report.points[0], report.points[-1]
    liqs = report.liquidations
    statuses = [a["status"] for a in report.actions]
    fees_end = {k: last["fees"][k] for k in FEE_KINDS}
    return {
        "aumStartUsd": first["aumUsd"],
        "aumEndUsd": last["aumUsd"],
        "aumChangeBps": pct_change_bps(first["aumUsd"], last["aumUsd"]),
        "lpSupplyStart": first["lpSupply"],
        "lpSupplyEnd": last["lpSupply"],
        "lpPriceStartUsd": first["lpPriceUsd"],
        "lpPriceEndUsd": last["lpPriceUsd"],
        "lpPriceChangeBps": pct_change_bps(first["lpPriceUsd"], last["lpPriceUsd"]),
        "holdPriceEndUsd": hold_price([first, last])[-1],
        "feesUsd": fees_end,
        "feesTotalUsd": sum(fees_end.values()),
        "protocolFeesHeldUsd": last["protocolFeesUsd"],
        "insuranceFundUsd": last["insuranceUsd"],
        "openInterestLongEndUsd": last["longOiUsd"],
        "openInterestShortEndUsd": last["shortOiUsd"],
        "peakOpenInterestUsd": max(p["longOiUsd"] + p["shortOiUsd"] for p in report.points),
        "liquidations": len(liqs),
        "liquidationsFull": sum(1 for x in liqs if x["full"]),
        "liquidationsPartial": sum(1 for x in liqs if not x["full"]),
        "liquidationsLong": sum(1 for x in liqs if x["side"] == "long"),
        "liquidationsShort": sum(1 for x in liqs if x["side"] == "short"),
        "liquidationVolumeUsd": sum(x["sizeUsd"] for x in liqs),
        "badDebtUsd": sum(x["badDebtUsd"] for x in liqs),
        "badDebtCoveredUsd": last["badDebtCoveredUsd"],
        "badDebtUncoveredUsd": last["badDebtUncoveredUsd"],
        "actionsOk": statuses.count("ok"),
        "actionsSkipped": statuses.count("skipped"),
        "actionsFailed": statuses.count("failed"),
        "simulatedHours": report.hours(last["chainTime"]),
        "wallSeconds": round(report.wall_seconds, 1),
    }


def to_json(report: Report) -> dict[str, Any]:
    opts = report.options
    return {
        "version": 1,
        "url": report.url,
        "options": {
            "steps": opts.steps,
            "traders": opts.traders,
            "stepMinutes": opts.step_minutes,
            "stepSeconds": opts.step_seconds,
            "seed": opts.seed,
            "dropPct": opts.drop_pct,
            "quick": opts.quick,
        },
        "units": {
            "usd": "integer, 6 decimals",
            "tokens": "base units of the mint",
            "utilization": "integer, 9 decimals (1e9 = 100%)",
            "rates": "hourly, 9 decimals",
            "price": "integer with priceExpo",
            "lpSupply": "LP token base units, 6 decimals",
        },
        "pricePath": report.path.to_json() | {"stepMinutes": opts.step_minutes},
        "series": series(report.points, report.t0),
        "final": report.points[-1],
        "liquidations": report.liquidations,
        "actions": report.actions,
        "actors": [
            {"name": a.name, "role": a.role, "kind": a.kind, "pubkey": str(a.keypair.pubkey())}
            for a in report.plan.actors.values()
        ],
        "keeper": report.keeper,
        "checks": report.checks,
        "summary": key_figures(report),
    }


# --------------------------------------------------------------------------------------------
# Text summary
# --------------------------------------------------------------------------------------------


def _usd(value: int) -> str:
    sign = "-" if value < 0 else ""
    cents = (abs(value) + 5_000) // 10_000
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def _pct(bps: int) -> str:
    sign = "+" if bps > 0 else "-" if bps < 0 else ""
    return f"{sign}{abs(bps) // 100}.{abs(bps) % 100:02d}%"


def _price(mantissa: int) -> str:
    return f"{mantissa / 10**-EXPO:,.2f}"


def summary_text(report: Report, out: Path) -> str:
    k = key_figures(report)
    opts, path = report.options, report.path
    checks = report.checks
    lps = sum(1 for a in report.plan.actors.values() if a.role == "lp")
    traders = len(report.plan.actors) - lps
    low = path.drop_end
    sol_before = path.price("SOL", path.drop_start - 1)
    lines = [
        f"Perpool demo: {k['simulatedHours']:.1f} simulated hours in {path.steps} steps "
        f"({opts.step_minutes} min, {path.minutes[path.drop_start]} min during the drop), "
        f"{lps} liquidity providers, {traders} traders, seed {opts.seed}",
        f"Price path: SOL {_price(sol_before)} -> {_price(path.price('SOL', low))} "
        f"(-{path.drop_pct}%) from hour {report.step_hours(path.drop_start - 1):.1f} to "
        f"{report.step_hours(low):.1f}; ETH {_price(path.price('ETH', 0))} -> "
        f"{_price(path.price('ETH', low))}, WBTC {_price(path.price('WBTC', 0))} -> "
        f"{_price(path.price('WBTC', low))}",
        f"Pool value (AUM): {_usd(k['aumStartUsd'])} -> {_usd(k['aumEndUsd'])} "
        f"({_pct(k['aumChangeBps'])})",
        f"LP token price: ${k['lpPriceStartUsd'] / USD_ONE:.6f} -> "
        f"${k['lpPriceEndUsd'] / USD_ONE:.6f} ({_pct(k['lpPriceChangeBps'])}); "
        f"LP supply {k['lpSupplyStart'] / USD_ONE:,.2f} -> {k['lpSupplyEnd'] / USD_ONE:,.2f}; "
        f"the pool's first tokens, held, would be worth ${k['holdPriceEndUsd'] / USD_ONE:.6f} "
        "per LP token",
        "Fees collected: "
        + ", ".join(f"{kind} {_usd(v)}" for kind, v in k["feesUsd"].items())
        + f"; total {_usd(k['feesTotalUsd'])}",
        f"Protocol fees held: {_usd(k['protocolFeesHeldUsd'])}; insurance fund "
        f"{_usd(k['insuranceFundUsd'])}",
        f"Open interest: peak {_usd(k['peakOpenInterestUsd'])}; at the end "
        f"{_usd(k['openInterestLongEndUsd'])} long, {_usd(k['openInterestShortEndUsd'])} short",
        f"Liquidations: {k['liquidations']} ({k['liquidationsFull']} full, "
        f"{k['liquidationsPartial']} partial; {k['liquidationsLong']} long, "
        f"{k['liquidationsShort']} short), {_usd(k['liquidationVolumeUsd'])} of size closed, "
        f"bad debt {_usd(k['badDebtUsd'])} ({_usd(k['badDebtCoveredUsd'])} covered by the "
        f"insurance fund, {_usd(k['badDebtUncoveredUsd'])} by the LPs)",
        f"Keeper: {checks['keeperLiquidations']} liquidations in its metrics, "
        f"{checks['keeperLogged']} in its log, {checks['liquidations']} on chain "
        f"({'match' if checks['keeperMatchesChain'] else 'MISMATCH'}); closed size "
        f"{'matches' if checks['volumeMatchesStats'] else 'DOES NOT MATCH'} the custodies' stats",
        "Token conservation (vault = owned + collateral + protocol fees + insurance): "
        + (
            f"holds for all {len(checks['conservation'])} custodies"
            if checks["conserved"]
            else "BROKEN for "
            + ", ".join(s for s, v in checks["conservation"].items() if not v["ok"])
        ),
        f"Actions: {k['actionsOk']} done, {k['actionsSkipped']} skipped (position already "
        f"liquidated), {k['actionsFailed']} failed",
        f"Outputs in {out}: {PNG_NAME}, {SUMMARY_NAME}, {JSON_NAME}, keeper/ "
        f"(config, price CSVs, log); wall time {k['wallSeconds']:.0f} s",
    ]
    if not checks["ok"]:
        lines.append("CHECKS FAILED: see 'checks' in " + JSON_NAME)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Plot
# --------------------------------------------------------------------------------------------


def _mark_drop(ax: Axes, report: Report) -> None:
    path = report.path
    ax.axvspan(
        report.step_hours(path.drop_start - 1),
        report.step_hours(path.drop_end),
        color=DROP_COLOR,
        alpha=0.12,
        lw=0,
    )
    ax.grid(True, alpha=0.3)
    ax.set_xlabel("simulated hours")


def _thousands(values: Sequence[int]) -> list[float]:
    return [v / USD_ONE / 1000 for v in values]


def plot(report: Report, target: Path) -> None:
    s = series(report.points, report.t0)
    hours = s["hours"]
    path = report.path
    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 2)
    fig.suptitle(
        f"Perpool demo: {report.hours(report.points[-1]['chainTime']):.1f} simulated hours in "
        f"{path.steps} steps, "
        f"{len(report.plan.actors)} participants, SOL -{path.drop_pct}% drop (shaded)",
        fontsize=14,
    )

    ax = axes[0][0]
    planned = [report.step_hours(i) for i in range(path.steps)]
    for symbol in SPOT:
        start = path.price(symbol, 0)
        ax.plot(
            planned,
            [100 * v / start for v in path.prices[symbol]],
            ls=":",
            color=COLORS[symbol],
            lw=1,
        )
        on_chain = [
            100 * p * 10.0 ** (e - EXPO) / start
            for p, e in zip(s["price"][symbol], s["priceExpo"][symbol], strict=True)
        ]
        ax.plot(hours, on_chain, color=COLORS[symbol], lw=1.8, label=f"{symbol} (on chain)")
    eth0 = path.price("ETH", 0)
    ax.plot(
        planned,
        [100 * (v / eth0) ** 2 for v in path.prices["ETH"]],
        color=COLORS["ETH2"],
        lw=1.2,
        ls="--",
        label="ETH² payoff",
    )
    ax.set_title("Price path (index, start = 100; dotted: planned path)")
    ax.legend(fontsize=8, loc="lower left")
    low = report.step_hours(path.drop_end)
    ax.annotate(
        f"SOL -{path.drop_pct}%",
        xy=(low, 100 * path.price("SOL", path.drop_end) / path.price("SOL", 0)),
        xytext=(8, -4),
        textcoords="offset points",
        color=DROP_COLOR,
        fontsize=9,
    )

    ax = axes[0][1]
    ax.plot(hours, _thousands(s["aumUsd"]), color="#1c7ed6", lw=2, label="AUM (program view)")
    ax.plot(
        hours, _thousands(s["aumCachedUsd"]), color="#868e96", lw=1, ls="--", label="cached AUM"
    )
    ax.set_title("Pool value (AUM), $ thousands")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    ax.plot(hours, [v / USD_ONE for v in s["lpPriceUsd"]], color="#2b8a3e", lw=2, label="LP token")
    ax.plot(
        hours,
        [v / USD_ONE for v in s["holdPriceUsd"]],
        color="#868e96",
        lw=1,
        ls="--",
        label="the first pool tokens, held",
    )
    ax.set_title("LP token price, $")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    for symbol, values in s["utilization"].items():
        if symbol == "ETH2":
            continue
        ax.plot(
            hours,
            [100 * (v or 0) / RATE_ONE for v in values],
            color=COLORS.get(symbol),
            lw=1.6,
            label=symbol,
        )
    ax.set_title("Utilization per custody (locked / owned), %")
    ax.legend(fontsize=8)

    ax = axes[2][0]
    for kind, values in s["fees"].items():
        ax.plot(hours, [(v - values[0]) / USD_ONE for v in values], lw=1.6, label=kind)
    ax.set_title("Fees since hour 0, $ (protocol: its share held, valued now)")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[2][1]
    ax.plot(hours, _thousands(s["openInterestLongUsd"]), color="#2f9e44", lw=2, label="long")
    ax.plot(hours, _thousands(s["openInterestShortUsd"]), color="#e8590c", lw=2, label="short")
    eth2_long = s["openInterestLongBySymbolUsd"].get("ETH2")
    if eth2_long is not None:
        eth2 = [
            a + b for a, b in zip(eth2_long, s["openInterestShortBySymbolUsd"]["ETH2"], strict=True)
        ]
        ax.plot(hours, _thousands(eth2), color=COLORS["ETH2"], lw=1, ls="--", label="ETH² (both)")
    ax.set_title("Open interest, $ thousands")
    ax.legend(fontsize=8)

    ax = axes[3][0]
    ax.step(hours, s["liquidations"], where="post", color="#495057", lw=2, label="count")
    twin = ax.twinx()
    for side, color in (("long", "#2f9e44"), ("short", "#e8590c")):
        for full in (True, False):
            mine = [x for x in report.liquidations if x["side"] == side and x["full"] == full]
            if not mine:
                continue
            twin.scatter(
                [report.hours(x["chainTime"]) for x in mine],
                [x["sizeUsd"] / USD_ONE / 1000 for x in mine],
                color=color if full else "none",
                edgecolors=color,
                s=40,
                label=f"{side}, {'full' if full else 'partial'}",
            )
    sizes = [x["sizeUsd"] / USD_ONE / 1000 for x in report.liquidations]
    twin.set_ylim(0, 1.15 * max(sizes, default=1.0))
    twin.set_ylabel("size closed, $ thousands (markers)")
    ax.set_ylabel("liquidations (cumulative)")
    ax.set_title("Liquidations by the keeper")
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=8, loc="upper left")

    for row in axes:
        for ax in row:
            _mark_drop(ax, report)

    ax = axes[3][1]
    ax.clear()
    ax.axis("off")
    k = key_figures(report)
    text = [
        f"AUM            {_usd(k['aumStartUsd'])} -> {_usd(k['aumEndUsd'])}",
        f"LP price       ${k['lpPriceStartUsd'] / USD_ONE:.4f} -> "
        f"${k['lpPriceEndUsd'] / USD_ONE:.4f} ({_pct(k['lpPriceChangeBps'])})",
        f"fees           {_usd(k['feesTotalUsd'])}",
        *(f"  {kind:<12} {_usd(v)}" for kind, v in k["feesUsd"].items()),
        f"protocol held  {_usd(k['protocolFeesHeldUsd'])}",
        f"liquidations   {k['liquidations']} ({k['liquidationsFull']} full, "
        f"{k['liquidationsPartial']} partial)",
        f"size closed    {_usd(k['liquidationVolumeUsd'])}",
        f"bad debt       {_usd(k['badDebtUsd'])}",
        f"peak OI        {_usd(k['peakOpenInterestUsd'])}",
        f"conservation   {'ok' if report.checks['conserved'] else 'BROKEN'}",
    ]
    ax.text(
        0.02, 0.98, "\n".join(text), va="top", family="monospace", fontsize=11, parse_math=False
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(target, dpi=DPI)


def write_outputs(report: Report, out: Path) -> str:
    """Writes the JSON, the summary and the PNG into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(to_json(report), indent=1) + "\n")
    text = summary_text(report, out)
    (out / SUMMARY_NAME).write_text(text + "\n")
    plot(report, out / PNG_NAME)
    return text
