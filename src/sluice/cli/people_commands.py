"""`sluice oncall` (who is on call for a schedule, now or at a time), `sluice schedules`, and
`sluice access extend` (make a grant last longer, within its flow's rules)."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.client import ApiClient
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import print_json, print_table


def oncall_command(
    schedule: Annotated[str, typer.Argument(help="The schedule's name.")],
    at: Annotated[
        str | None, typer.Option("--at", help="An ISO 8601 time with a zone, e.g. 2026-01-05T22:00:00Z.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Who is on call for SCHEDULE now (or --at a time)."""
    with ApiClient.from_options(url, token) as api:
        answer = api.get(f"/schedules/{schedule}/on-call", at=at)
    if as_json:
        print_json(answer)
        return
    rows = [{"email": email} for email in answer["on_call"]]
    print_table(
        rows, [("email", "On call")], title=f"{schedule} at {answer['at']}", empty="nobody is on call"
    )


def schedules_command(as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Every on-call schedule."""
    with ApiClient.from_options(url, token) as api:
        items = api.get("/schedules")["items"]
    if as_json:
        print_json(items)
        return
    rows = [
        {
            "name": s["name"],
            "kind": "ical" if s.get("ical") else "rotation",
            "members": ", ".join(s.get("members") or []) or s.get("ical") or "",
            "rotation": f"{s['rotation']} at {s['handoff']} {s['timezone']}" if not s.get("ical") else "-",
        }
        for s in items
    ]
    print_table(
        rows,
        [("name", "Schedule"), ("kind", "Kind"), ("members", "Members / feed"), ("rotation", "Rotation")],
    )


def extend_command(
    grant_id: Annotated[str, typer.Argument(help="The grant to extend.")],
    by: Annotated[str, typer.Option("--by", help="How much longer, e.g. 30m or 1h.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Make GRANT_ID last longer, within what its flow allows."""
    with ApiClient.from_options(url, token) as api:
        grant = api.post(f"/access/{grant_id}/extend", {"by": by, "reason": reason})
    if as_json:
        print_json(grant)
        return
    print_table([grant], [("id", "Grant"), ("resource", "Resource"), ("ends_at", "Ends")])


def register_people(app: typer.Typer, access_app: typer.Typer) -> None:
    app.command("oncall")(oncall_command)
    app.command("schedules")(schedules_command)
    access_app.command("extend")(extend_command)
