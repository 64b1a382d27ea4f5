"""Printing results: plain JSON for machines (`--json`), Rich tables for people."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

# Both follow sys.stdout / sys.stderr as they are at print time (so test runners can capture them).
console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)
# Piped into a file or another program, a table is as wide as its content: nothing folds at 80 columns.
PIPED_WIDTH = 10_000


def _show(renderable: Table) -> None:
    if console.is_terminal:
        console.print(renderable)
    else:
        Console(file=console.file, highlight=False, soft_wrap=False, width=PIPED_WIDTH).print(renderable)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_line(text: str) -> None:
    """One plain line on stdout, untouched by Rich (for ids and tokens that scripts capture)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """A remark for the person, on stderr so that stdout stays clean for scripts."""
    err_console.print(text)


_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?$")


def when(value: datetime) -> str:
    """A time for people: seconds precision, `Z` for UTC."""
    if value.utcoffset() == timedelta(0):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    return value.isoformat(sep=" ", timespec="seconds")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, str):
        return when(datetime.fromisoformat(value)) if _ISO_TIME.match(value) else value
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    if isinstance(value, Iterable):
        return ", ".join(cell(v) for v in value)
    return str(value)


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """`columns` pairs a row key with its heading."""
    if not rows:
        note(f"[dim]{empty}[/dim]")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for _, heading in columns:
        table.add_column(heading, overflow="fold")
    for row in rows:
        table.add_row(*(cell(row.get(key)) for key, _ in columns))
    _show(table)


def print_fields(data: Mapping[str, Any], *, title: str | None = None) -> None:
    """One object as a two-column key/value table."""
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in data.items():
        table.add_row(key, cell(value))
    _show(table)


def items_of(payload: Any) -> list[dict[str, Any]]:
    """API listings answer `{items: [...]}`; accept a bare list too."""
    items = payload.get("items", []) if isinstance(payload, Mapping) else payload
    return [dict(i) for i in items or []]
