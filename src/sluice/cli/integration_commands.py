"""`sluice integrations`: how each target system is doing, `check NAME` to test one now, and
`retire NAME` to take one out of service for good."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import items_of, print_json, print_line, print_table

integrations_app = typer.Typer(
    help="Configured target systems: reachable, last sync, resources, live grants, last error.",
    invoke_without_command=True,
)

COLUMNS = [
    ("name", "Name"),
    ("kind", "Kind"),
    ("reachable", "Reachable"),
    ("last_sync_at", "Last sync"),
    ("resource_count", "Resources"),
    ("grants_active", "Active grants"),
    ("grants_failing", "Failing"),
    ("lifecycle", "State"),
    ("last_error", "Last error"),
]


def _row(status: dict[str, Any]) -> dict[str, Any]:
    reachable = status.get("reachable")
    lifecycle = status.get("lifecycle") or "active"
    if status.get("disabled") and lifecycle == "active":
        lifecycle = "disabled"
    return {
        **status,
        "reachable": "not synced yet" if reachable is None else reachable,
        "lifecycle": lifecycle,
    }


@integrations_app.callback()
def integrations(
    ctx: typer.Context, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """The status table (reachable as of each integration's last sync)."""
    if ctx.invoked_subcommand is not None:
        return
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get("/integrations/status"))
    if as_json:
        print_json(items)
        return
    print_table(
        [_row(i) for i in items], COLUMNS, empty="no integrations; declare some and run `sluice apply`"
    )


@integrations_app.command("check")
def check(
    name: Annotated[str, typer.Argument(help="The integration to test.")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Test the connection and the admin rights Sluice needs, now; say what is missing."""
    with ApiClient.from_options(url, token) as api:
        result = api.post(f"/integrations/{quote(name, safe='')}/check") or {}
    if as_json:
        print_json(result)
    problems = [str(p) for p in result.get("problems") or []]
    if not problems:
        if not as_json:
            print_line(f"{name}: reachable, and the admin account has every right Sluice needs")
        return
    what = "unreachable" if not result.get("reachable", True) else f"{len(problems)} problem(s)"
    raise CliError(f"{name}: {what}", notes=problems)


@integrations_app.command("retire")
def retire(
    name: Annotated[str, typer.Argument(help="The integration to retire.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
    wait: Annotated[
        float,
        typer.Option("--wait", min=0, help="Seconds to wait for the worker to finish (0: do not wait)."),
    ] = 120.0,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Take an integration out of service for good (admin token): no new requests, every live grant
    revoked, the roles and rights Sluice made in the target removed by the worker. Its history stays,
    and the config may drop it afterwards."""
    path = f"/integrations/{quote(name, safe='')}"
    with ApiClient.from_options(url, token) as api:
        status = api.post(f"{path}/retire", {"reason": reason}) or {}
        deadline = time.monotonic() + wait
        while status.get("lifecycle") != "retired" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = api.get(f"{path}/status") or {}
    if as_json:
        print_json(status)
    if status.get("lifecycle") == "retired":
        if not as_json:
            print_line(
                f"{name}: retired; nothing Sluice made is left in the target, and the config may drop it"
            )
        return
    notes = [f"still retiring: {status['retire_error']}"] if status.get("retire_error") else []
    notes.append(f"the worker finishes it; `sluice integrations` shows when {name} is retired")
    if wait == 0:
        if not as_json:
            print_line(f"{name}: retiring; {notes[-1]}")
        return
    raise CliError(f"{name}: not retired after {wait:g}s", notes=notes)
