"""Human output: Rich tables over the same data ``--json`` prints."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

# Raw or bulky fields that a table leaves to --json.
_HIDDEN = frozenset({"events", "logs", "account", "unitsConsumed", "simulated"})


def _label(key: str) -> str:
    out = "".join(" " + ch.lower() if ch.isupper() else ch for ch in key)
    for unit in (" usd", " bps"):
        if out.endswith(unit):
            out = out[: -len(unit)] + f" ({unit.strip().upper()})"
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def key_values(title: str) -> Callable[[Console, dict[str, Any]], None]:
    """A two-column table of the result, then the transaction line or simulation logs."""

    def render(console: Console, data: dict[str, Any]) -> None:
        table = Table(title=title, show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for key, value in data.items():
            if key in _HIDDEN or key == "signature" or isinstance(value, dict | list):
                continue
            table.add_row(_label(key), _cell(value))
        console.print(table)
        transaction_footer(console, data)

    return render


def transaction_footer(console: Console, data: dict[str, Any]) -> None:
    if data.get("simulated"):
        console.print("[yellow]simulated only; nothing was sent[/]")
        if data.get("unitsConsumed") is not None:
            console.print(f"compute units: {data['unitsConsumed']}")
        for line in data.get("logs") or []:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    elif data.get("signature"):
        console.print(f"[green]confirmed[/] {data['signature']}", highlight=False, soft_wrap=True)


def rows_table(
    title: str, rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]]
) -> Table:
    table = Table(title=title, title_justify="left")
    for _key, header in columns:
        table.add_column(header, justify="right" if header[:1].islower() else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key, _header in columns))
    return table
