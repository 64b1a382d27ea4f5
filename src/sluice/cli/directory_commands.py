"""`sluice directory sources` and `sluice directory sync [NAME]`: the directory sources Sluice reads
(LDAP), and a sync now instead of at the next interval. Both go through the API (the server reads the
directory; syncing takes an admin token)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from sluice.cli.client import ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import items_of, note, print_json, print_line, print_table

directory_app = typer.Typer(
    help="Directory sources Sluice reads (LDAP): status and sync.", no_args_is_help=True
)

COLUMNS = [
    ("name", "Name"),
    ("source", "Source"),
    ("last_sync_at", "Last sync"),
    ("next_sync_at", "Next sync"),
    ("last_error", "Last error"),
]
_COUNTS = (
    ("people_created", "people created"),
    ("people_changed", "changed"),
    ("people_deactivated", "deactivated"),
    ("groups_created", "groups created"),
    ("groups_removed", "removed"),
    ("memberships_added", "memberships added"),
    ("memberships_removed", "removed"),
)


@directory_app.command("sources")
def sources(as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Each directory source and how its last sync went."""
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get("/directory/sources"))
    if as_json:
        print_json(items)
        return
    print_table(items, COLUMNS, empty="no directory sources; declare one under directory_sources: and apply")


def summary(outcome: dict[str, Any]) -> str:
    result = outcome.get("result") or {}
    counts = ", ".join(f"{result.get(key, 0)} {words}" for key, words in _COUNTS)
    return f"{outcome['name']}: {counts}"


@directory_app.command("sync")
def sync(
    name: Annotated[
        str | None, typer.Argument(help="The source to sync; every source when left out.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Read the directory now and apply what changed; exits 1 when a source could not be read."""
    with ApiClient.from_options(url, token) as api:
        if name is None:
            outcomes = items_of(api.post("/directory/sync"))
        else:
            outcomes = [dict(api.post(f"/directory/sources/{quote(name, safe='')}/sync") or {})]
    if as_json:
        print_json(outcomes)
    failed = [o for o in outcomes if not o.get("ok")]
    for outcome in outcomes:
        if outcome.get("ok") and not as_json:
            print_line(summary(outcome))
        for problem in (outcome.get("result") or {}).get("conflicts") or []:
            note(f"[yellow]conflict[/yellow] {escape(str(problem))}")
    if failed:
        raise CliError(
            f"{len(failed)} source(s) could not be read", notes=[str(o.get("error")) for o in failed]
        )
    if not outcomes and not as_json:
        print_line("no directory sources; declare one under directory_sources: and apply")
