"""`sluice grants list`: everyone's grants for operators (admin token), e.g. the revokes that keep
failing (`--state revoke_failed`); `sluice grants revoke --integration`: the emergency stop."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.client import ApiClient
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import err_console, print_json, print_line, print_table
from sluice.domain.states import GrantState

grants_app = typer.Typer(help="Everyone's grants (admin): find what is stuck.", no_args_is_help=True)

COLUMNS = [
    ("id", "Grant"),
    ("grantee", "Grantee"),
    ("resource", "Resource"),
    ("permission", "Permission"),
    ("state", "State"),
    ("ends_at", "Ends"),
    ("attempts", "Attempts"),
    ("failing_since", "Failing since"),
    ("last_error", "Last error"),
]


@grants_app.command("list")
def list_grants(
    state: Annotated[
        GrantState | None, typer.Option("--state", help="Only grants in this state.", case_sensitive=False)
    ] = None,
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
    identity: Annotated[str | None, typer.Option("--identity", help="Only grants of this email.")] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="Only resources whose path starts so.")
    ] = None,
    include_ended: Annotated[
        bool, typer.Option("--all", help="Include ended grants (when no --state is given).")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 1000,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Everyone's grants, newest first; live ones unless --state or --all says otherwise."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages(
            "/grants",
            limit=limit,
            state=state.value if state else None,
            integration=integration,
            identity=identity,
            resource=resource,
            include_ended="true" if include_ended else None,
        )
    if as_json:
        print_json({"items": items, "total": total})
        return
    print_table(items, COLUMNS, empty="no grants match")
    if total > len(items):
        err_console.print(f"[dim]showing {len(items)} of {total}; narrow with filters or --limit[/dim]")


@grants_app.command("revoke")
def revoke_all(
    integration: Annotated[
        str, typer.Option("--integration", help="Revoke every live grant of this integration.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the audit log.")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Emergency stop: every live grant of one integration ends now (operator token). New requests are
    still taken: disable the integration in the config, or retire it, to stop those too."""
    with ApiClient.from_options(url, token) as api:
        result = api.post("/grants/revoke", {"integration": integration, "reason": reason})
    if as_json:
        print_json(result)
        return
    count = len(result.get("revoked") or [])
    print_line(
        f"{integration}: {count} grant(s) being revoked; `sluice grants list --integration {integration}`"
    )
