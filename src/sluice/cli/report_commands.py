"""`sluice report access`: who had which access, when, approved by whom and ended how, as a table,
CSV or JSON, for access reviews and auditors (admin token)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import EXIT_BAD_INPUT, CliError
from sluice.cli.options import TokenOpt, UrlOpt
from sluice.cli.output import err_console, print_table

report_app = typer.Typer(help="Reports for access reviews and auditors (admin).", no_args_is_help=True)

MAX_ROWS = 1_000_000
REPORT_COLUMNS = (
    "grant_id",
    "person",
    "integration",
    "resource",
    "permission",
    "flow",
    "request_id",
    "requested_by",
    "requested_at",
    "reason",
    "approved_by",
    "granted_at",
    "planned_end",
    "ended_at",
    "state",
    "end_reason",
)
TABLE_COLUMNS = [
    ("person", "Person"),
    ("resource", "Resource"),
    ("permission", "Permission"),
    ("granted_at", "From"),
    ("ended_at", "Until"),
    ("approved_by", "Approved by"),
    ("state", "State"),
]


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _moment(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{option}: {value!r} is not a date or time, e.g. 2026-11-01", exit_code=EXIT_BAD_INPUT
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a plain date or time is the local one
    return moment.isoformat()


def as_csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for item in items:
        writer.writerow(
            ";".join(value) if isinstance(value, list) else ("" if value is None else value)
            for value in (item.get(column) for column in REPORT_COLUMNS)
        )
    return out.getvalue()


@report_app.command("access")
def access_report(
    person: Annotated[str | None, typer.Option("--person", help="Only this person (email).")] = None,
    resource: Annotated[str | None, typer.Option("--resource", help="A resource path or its prefix.")] = None,
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
    flow: Annotated[str | None, typer.Option("--flow", help="Only access given through this flow.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Access live at or after this (ISO).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Access live at or before this.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.TABLE,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", dir_okay=False, help="Write to this file, not stdout.")
    ] = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Who had which access, when, asked by whom and why, approved by whom, and how it ended."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages(
            "/reports/access",
            limit=MAX_ROWS,
            person=person,
            resource=resource,
            integration=integration,
            flow=flow,
            since=_moment(since, "--since"),
            until=_moment(until, "--until"),
        )
    if output_format is Format.TABLE and output is None:
        rows = [{**i, "approved_by": ", ".join(i.get("approved_by") or [])} for i in items]
        print_table(rows, TABLE_COLUMNS, empty="no access in this report")
        return
    text = (
        as_csv(items)
        if output_format is Format.CSV
        else json.dumps({"items": items, "total": total}, indent=2)
    )
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        err_console.print(f"{len(items)} row(s) written to {output}")
