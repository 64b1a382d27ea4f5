"""`sluice request ...`: ask for access, and decide on what others asked for."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import cell, items_of, print_fields, print_json, print_line, print_table

request_app = typer.Typer(help="Ask for access, follow and decide on requests.", no_args_is_help=True)


class Scope(StrEnum):
    MINE = "mine"
    TO_APPROVE = "to_approve"
    TO_REVIEW = "to_review"
    ALL = "all"


REQUEST_COLUMNS = [
    ("id", "ID"),
    ("state", "State"),
    ("requester", "Requester"),
    ("access", "Access"),
    ("duration", "For"),
    ("created_at", "Created"),
]

GRANT_COLUMNS = [
    ("id", "Grant"),
    ("resource", "Resource"),
    ("permission", "Permission"),
    ("state", "State"),
    ("starts_at", "Starts"),
    ("ends_at", "Ends"),
]


REQUEST_FIELDS = (
    "id",
    "state",
    "requester",
    "flow",
    "reason",
    "duration",
    "created_at",
    "pending_until",
    "approvers",
    "decided_by",
    "decided_at",
    "decision_reason",
)
REVIEW_FIELDS = ("break_glass", "incident", "review", "reviewed_by", "reviewed_at", "review_reason")


def _request_row(item: dict[str, Any]) -> dict[str, Any]:
    """A request object with its grants summed up as `permission resource` lines."""
    grants = item.get("grants") or []
    return {**item, "access": [f"{g.get('permission')} {g.get('resource')}" for g in grants]}


def _show_request(item: dict[str, Any]) -> None:
    fields = REQUEST_FIELDS + (REVIEW_FIELDS if item.get("break_glass") else ())
    print_fields({k: item.get(k) for k in fields}, title=f"Request {item.get('id', '')}")
    grants = item.get("grants") or []
    if grants:
        print_table(grants, GRANT_COLUMNS, title="Grants")
    approvals = item.get("approvals") or []
    if approvals:
        print_table(
            approvals,
            [("approver", "By"), ("decision", "Decision"), ("reason", "Reason"), ("at", "At")],
            title="Approvals",
        )


@request_app.command("create")
def create(
    duration: Annotated[str, typer.Option("--duration", "-d", help="How long: 30s, 15m, 4h, 1h30m.")],
    resource: Annotated[
        list[str] | None,
        typer.Option(
            "--resource",
            "-r",
            help="Resource path, e.g. prod-pg/appdb/public/orders; with --bundle, a subset of the bundle.",
        ),
    ] = None,
    permission: Annotated[
        str | None, typer.Option("--permission", "-p", help="e.g. read, write, member (not with --bundle).")
    ] = None,
    bundle: Annotated[
        str | None, typer.Option("--bundle", "-b", help="Request this bundle's resources, each as it says.")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why you need it.")] = "",
    flow: Annotated[str | None, typer.Option("--flow", help="Use this access flow.")] = None,
    break_glass: Annotated[
        bool,
        typer.Option(
            "--break-glass",
            help="Emergency: approve it yourself at once (the flow must allow it; needs --reason and "
            "--incident). Every approver is told and reviews it afterwards.",
        ),
    ] = False,
    incident: Annotated[
        str | None, typer.Option("--incident", help="With --break-glass: the incident, e.g. INC-123.")
    ] = None,
    on_behalf_of: Annotated[
        str | None,
        typer.Option("--for", help="Ask for someone else (their email), where a flow lets you."),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Ask for access to resources, or to a whole bundle (`sluice requestable` lists both); prints the
    new request's id."""
    if incident is not None and not break_glass:
        raise CliError("--incident goes with --break-glass")
    if break_glass and (incident is None or not reason.strip()):
        raise CliError("--break-glass needs --reason (what the emergency is) and --incident (e.g. INC-123)")
    if break_glass and bundle is not None:
        raise CliError("--break-glass does not go with --bundle: name the resources and the permission")
    if bundle is not None:
        if permission is not None:
            raise CliError("--permission does not go with --bundle: the bundle says the permission of each")
        if on_behalf_of is not None:
            raise CliError("--for does not go with --bundle: a bundle is requested for yourself")
        path = f"/bundles/{quote(bundle, safe='')}/requests"
        body: dict[str, Any] = {"duration": duration, "reason": reason, "flow": flow, "resources": resource}
    else:
        if not resource or permission is None:
            raise CliError("say what to request: --resource and --permission, or --bundle NAME")
        path = "/requests"
        body = {
            "resources": resource,
            "permission": permission,
            "duration": duration,
            "reason": reason,
            "flow": flow,
            "on_behalf_of": on_behalf_of,
        }
    if break_glass:
        body["break_glass"] = {"reason": reason, "incident": incident}
    with ApiClient.from_options(url, token) as api:
        created = api.post(path, {k: v for k, v in body.items() if v is not None})
    if as_json:
        print_json(created)
    else:
        print_line(str(created["id"]))


@request_app.command("list")
def list_requests(
    scope: Annotated[Scope, typer.Option("--scope", help="Whose requests.")] = Scope.MINE,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, approved, rejected, cancelled or expired.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List requests: yours, those waiting for your approval, break-glass ones for you to review, or all
    (admins)."""
    with ApiClient.from_options(url, token) as api:
        payload = api.get("/requests", scope=scope.value, status=status)
    items = items_of(payload)
    if as_json:
        print_json(items)
        return
    print_table([_request_row(i) for i in items], REQUEST_COLUMNS, empty="no requests")


@request_app.command("show")
def show(request_id: str, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Show one request with its grants and approvals."""
    with ApiClient.from_options(url, token) as api:
        item = api.get(f"/requests/{request_id}")
    if as_json:
        print_json(item)
    else:
        _show_request(item)


def _decide(
    action: str, request_id: str, reason: str, as_json: bool, url: str | None, token: str | None
) -> None:
    with ApiClient.from_options(url, token) as api:
        item = api.post(f"/requests/{request_id}/{action}", {"reason": reason})
    if as_json:
        print_json(item)
        return
    state = cell(item.get("state")) if isinstance(item, dict) else "done"
    print_line(f"{request_id}: {state}")


ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")]


@request_app.command("approve")
def approve(
    request_id: str,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Approve a request you are an approver of."""
    _decide("approve", request_id, reason, as_json, url, token)


@request_app.command("reject")
def reject(
    request_id: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (the requester sees it).")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Reject a request; a reason is required."""
    _decide("reject", request_id, reason, as_json, url, token)


@request_app.command("cancel")
def cancel(
    request_id: str,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Cancel your own request (pending or active)."""
    _decide("cancel", request_id, reason, as_json, url, token)


@request_app.command("revoke")
def revoke(
    request_id: str,
    reason: ReasonOpt = "",
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """End the access of an approved request now."""
    _decide("revoke", request_id, reason, as_json, url, token)


class Outcome(StrEnum):
    OK = "ok"
    REVOKE = "revoke"


@request_app.command("review")
def review(
    request_id: str,
    reason: Annotated[
        str, typer.Option("--reason", help="What the review found (recorded in the audit log).")
    ],
    outcome: Annotated[
        Outcome, typer.Option("--outcome", help="ok: it was justified; revoke: end its access now.")
    ] = Outcome.OK,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Review a break-glass request you are an approver of (`request list --scope to_review`)."""
    with ApiClient.from_options(url, token) as api:
        item = api.post(f"/requests/{request_id}/review", {"reason": reason, "outcome": outcome.value})
    if as_json:
        print_json(item)
        return
    print_line(f"{request_id}: {cell(item.get('review'))}, {cell(item.get('state'))}")
