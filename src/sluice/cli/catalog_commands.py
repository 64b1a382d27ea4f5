"""Read-mostly listings over the API: inventory, audit log, identities, groups, flows, integrations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sluice.cli.client import PAGE_SIZE, ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import err_console, items_of, print_fields, print_json, print_table
from sluice.domain.approval import ApprovalPolicy

inventory_app = typer.Typer(help="Discovered resources.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@inventory_app.command("list")
def inventory_list(
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this resource type.")] = None,
    path_prefix: Annotated[str | None, typer.Option("--path-prefix", help="Only paths starting so.")] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only resources with this tag: key=value, key, key != value.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """List resources that can be requested, with their tags (`sluice tags list PATH` says where each
    comes from)."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages(
            "/resources",
            limit=limit,
            integration=integration,
            type=type_,
            path_prefix=path_prefix,
            tag=tag,
        )
    if as_json:
        print_json({"items": items, "total": total})
        return
    print_table(
        items,
        [("path", "Path"), ("type", "Type"), ("integration", "Integration"), ("tags", "Tags")],
        empty="no resources; run `sluice inventory sync`",
    )
    if total > len(items):
        err_console.print(
            f"[dim]showing {len(items)} of {total}; narrow with --path-prefix, --tag or --limit[/dim]"
        )


@inventory_app.command("sync")
def inventory_sync(
    name: Annotated[str | None, typer.Argument(help="Integration to sync; all when left out.")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Discover resources in the targets now."""
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    with ApiClient.from_options(url, token) as api:
        names = [name] if name else [str(i["name"]) for i in items_of(api.get("/integrations"))]
        if not names:
            raise CliError("there are no integrations to sync; declare some and run `sluice apply`")
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=as_json,
        ) as progress:
            task = progress.add_task("syncing", total=len(names))
            for each in names:
                progress.update(task, description=f"syncing {each}")
                try:
                    outcome = api.post(f"/integrations/{each}/sync") or {}
                except CliError as exc:
                    if name or exc.status is None or exc.status in (401, 403):
                        raise  # one integration asked for, or nothing else would work either
                    failures.append(f"{each}: {exc.detail}")
                    outcome = {"error": exc.detail}
                results.append({"integration": each, **_counts(outcome)})
                progress.advance(task)
    if as_json:
        print_json(results)
    else:
        print_table(
            results,
            [
                ("integration", "Integration"),
                ("added", "Added"),
                ("updated", "Updated"),
                ("deleted", "Deleted"),
                ("total", "Total"),
                ("error", "Error"),
            ],
        )
    if failures:
        raise CliError(f"{len(failures)} of {len(names)} integrations failed to sync", notes=failures)


def _counts(outcome: dict[str, Any]) -> dict[str, Any]:
    return {k: outcome[k] for k in ("added", "updated", "deleted", "total", "error") if k in outcome}


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 50,
    subject: Annotated[str | None, typer.Option("--subject", help="Only events about this id.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. grant.revoked.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Audit events, newest first (admin tokens only)."""
    items: list[dict[str, Any]] = []
    with ApiClient.from_options(url, token) as api:
        while len(items) < limit:
            before = items[-1]["id"] if items else None
            batch = items_of(
                api.get(
                    "/audit",
                    limit=min(PAGE_SIZE, limit - len(items)),
                    subject=subject,
                    action=action,
                    before_id=before,
                )
            )
            items.extend(batch)
            if len(batch) < min(PAGE_SIZE, limit):
                break
    if as_json:
        print_json(items)
        return
    rows = [{**i, "subject": f"{i.get('subject_type')}:{i.get('subject_id')}"} for i in items]
    print_table(
        rows,
        [
            ("at", "At"),
            ("actor", "Actor"),
            ("action", "Action"),
            ("subject", "Subject"),
            ("reason", "Reason"),
            ("details", "Details"),
        ],
        empty="no audit events",
    )


def describe_subject(subject: dict[str, Any]) -> str:
    if subject.get("user"):
        return f"user {subject['user']}"
    if subject.get("group"):
        return f"group {subject['group']}"
    return "manager" if subject.get("manager") else str(subject)


def describe_target(target: dict[str, Any]) -> str:
    names = (target.get("select") or {}).get("names")
    which = ", ".join(names) if names else "any"
    permissions = ", ".join(target.get("permissions") or [])
    return f"{target.get('integration')} {target.get('type')} ({which}): {permissions}"


def describe_approvers(flow: dict[str, Any]) -> list[str] | str:
    """Who approves under a flow, as it names them: its `approval:` policy tier by tier, or the older
    `approvers:` list; a flow with neither approves automatically."""
    approval = flow.get("approval")
    if not approval:
        return [describe_subject(s) for s in flow.get("approvers") or []] or "none (automatic)"
    try:
        tiers = ApprovalPolicy.model_validate(approval).tiers()
    except ValueError:  # written by a newer server than this client knows
        return str(approval)
    return [
        (f"after {tier.after}: " if tier.after else "") + group.describe()
        for tier in tiers
        for group in tier.groups
    ]


def flow_row(flow: dict[str, Any]) -> dict[str, Any]:
    return {
        **flow,
        "requesters": [describe_subject(s) for s in flow.get("requesters") or []],
        "targets": [describe_target(t) for t in flow.get("targets") or []],
        "approvers": describe_approvers(flow),
    }


def _listing(
    path: str,
    columns: list[tuple[str, str]],
    as_json: bool,
    url: str | None,
    token: str | None,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    **params: Any,
) -> None:
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get(path, **params))
    if as_json:
        print_json(items)
    else:
        print_table([shape(i) for i in items] if shape else items, columns)


def register_listings(app: typer.Typer) -> None:
    """The simple top-level listings."""

    @app.command("whoami")
    def whoami(as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Who you are, how you are signed in (API token or `sluice login`) and until when."""
        with ApiClient.from_options(url, token) as api:
            me = api.get("/me")
        if as_json:
            print_json(me)
        else:
            print_fields(me)

    @app.command("flows")
    def flows(as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Access flows: who may ask for what, who approves, for how long."""
        columns = [
            ("name", "Name"),
            ("active", "Active"),
            ("requesters", "Requesters"),
            ("targets", "Targets"),
            ("approvers", "Approvers"),
            ("max_duration", "Max duration"),
        ]
        _listing("/flows", columns, as_json, url, token, flow_row)
