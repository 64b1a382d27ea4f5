"""`sluice access ...`: what you hold now, and the credentials to use it."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import console, items_of, print_fields, print_json, print_line, print_table
from sluice.domain.connection import env_lines

access_app = typer.Typer(help="Your grants and their credentials.", no_args_is_help=True)

ACCESS_COLUMNS = [
    ("id", "Grant"),
    ("resource", "Resource"),
    ("permission", "Permission"),
    ("state", "State"),
    ("ends_at", "Ends"),
]


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


_HINTS = ("connection", "client", "env")


@access_app.command("show")
def show(grant_id: str, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """One grant with its connection details and credentials (shown only to you)."""
    with ApiClient.from_options(url, token) as api:
        item = api.get(f"/access/{grant_id}")
    if as_json:
        print_json(item)
        return
    print_fields({k: v for k, v in item.items() if k not in _HINTS}, title=f"Grant {grant_id}")
    connection = item.get("connection") or {}
    extra = connection.get("details", connection)
    known = set(item) | {"kind"}
    more = {k: v for k, v in extra.items() if k not in known}
    if more:
        print_fields(more, title="Connection")
    if item.get("client"):
        console.print("\n[bold]Connect:[/bold]")
        if item.get("env"):
            print_line(f'eval "$(sluice access credentials {grant_id} --env)"')
        print_line(item["client"])


@access_app.command("credentials")
def credentials(
    grant_id: str,
    as_env: Annotated[
        bool, typer.Option("--env", help="Print `export NAME=value` lines for the target's own client.")
    ] = False,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """The credentials of an active grant of yours: the connection and password, or (`--env`) the
    environment the target's client reads, ready for `eval`."""
    with ApiClient.from_options(url, token) as api:
        item = api.get(f"/access/{grant_id}")
    if item.get("state") != "active" or not item.get("connection"):
        raise CliError(f"grant {grant_id} is {item.get('state')}: it has no usable credentials")
    if as_env:
        if not item.get("env"):
            raise CliError(f"a {item['connection'].get('kind')} grant has no client environment")
        for line in env_lines(item["env"]):
            print_line(line)
        return
    held = {**item["connection"], "password": item.get("password")}
    if as_json:
        print_json(held)
        return
    print_fields(held, title=f"Credentials of {grant_id}")


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
