"""`sluice access ...`: what you hold now, and the credentials to use it."""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any

import typer

from sluice.cli.client import ApiClient
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import console, items_of, print_fields, print_json, print_line, print_table

access_app = typer.Typer(help="Your grants and their credentials.", no_args_is_help=True)

ACCESS_COLUMNS = [
    ("id", "Grant"),
    ("resource", "Resource"),
    ("permission", "Permission"),
    ("state", "State"),
    ("ends_at", "Ends"),
]


_PLAIN_LIBPQ = re.compile(r"[A-Za-z0-9_.@:/+=-]+")
_SHELL_SPECIAL = re.compile(r"[\"$`\\!]")


def _libpq_value(value: Any) -> str:
    text = str(value)
    if _PLAIN_LIBPQ.fullmatch(text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _shell_word(text: str) -> str:
    return f'"{text}"' if not _SHELL_SPECIAL.search(text) else shlex.quote(text)


def psql_command(item: dict[str, Any]) -> str | None:
    """A ready `psql` invocation for a PostgreSQL grant, or None for other kinds of grant."""
    if not all(item.get(k) for k in ("host", "port", "database", "username")):
        return None
    parts = [
        f"host={_libpq_value(item['host'])}",
        f"port={_libpq_value(item['port'])}",
        f"dbname={_libpq_value(item['database'])}",
        f"user={_libpq_value(item['username'])}",
    ]
    if item.get("password"):
        parts.append(f"password={_libpq_value(item['password'])}")
    return "psql " + _shell_word(" ".join(parts))


@access_app.command("list")
def list_access(
    include_ended: Annotated[bool, typer.Option("--all", help="Include grants that have ended.")] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Your grants: what, until when, and in which state."""
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get("/access", include_ended="true" if include_ended else None, limit=500))
    if as_json:
        print_json(items)
        return
    print_table(items, ACCESS_COLUMNS, empty="you hold no access")


@access_app.command("show")
def show(grant_id: str, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """One grant with its connection details and credentials (shown only to you)."""
    with ApiClient.from_options(url, token) as api:
        item = api.get(f"/access/{grant_id}")
    if as_json:
        print_json(item)
        return
    print_fields(item, title=f"Grant {grant_id}")
    command = psql_command(item)
    if command:
        console.print("\n[bold]Connect:[/bold]")
        print_line(command)


@access_app.command("revoke")
def revoke(
    grant_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """End one grant now: your own, or one you may revoke as an approver or admin."""
    with ApiClient.from_options(url, token) as api:
        item = api.post(f"/access/{grant_id}/revoke", {"reason": reason})
    if as_json:
        print_json(item)
        return
    state = item.get("state") if isinstance(item, dict) else None
    print_line(f"{grant_id}: {state or 'revoking'}")
