"""`sluice requestable` and `sluice explain`: what the caller may request, and why (not)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.client import PAGE_SIZE, ApiClient
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import err_console, note, print_json, print_table


def requestable_command(
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this resource type.")] = None,
    path_prefix: Annotated[str | None, typer.Option("--path-prefix", help="Only paths starting so.")] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only resources with this tag: key=value, key, key != value.")
    ] = None,
    text: Annotated[str | None, typer.Option("--q", help="Only names or paths containing this text.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many resources.")] = 100,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every resource and permission you may request, with the flow, its longest duration and approvers."""
    items: list[dict[str, Any]] = []
    bundles: list[dict[str, Any]] = []
    offset: int | None = 0
    with ApiClient.from_options(url, token) as api:
        while offset is not None and len(items) < limit:
            page = api.get(
                "/requestable",
                integration=integration,
                type=type_,
                path_prefix=path_prefix,
                tag=tag,
                q=text,
                limit=min(PAGE_SIZE, limit - len(items)),
                offset=offset,
            )
            items.extend(page.get("items", []))
            bundles.extend(page.get("bundles", []) if offset == 0 else [])
            offset = page.get("next_offset")
    if as_json:
        print_json({"items": items, "bundles": bundles, "more": offset is not None})
        return
    rows = [
        {
            "path": item["path"],
            "type": item["type"],
            "permission": option["permission"],
            "flow": option["flow"],
            "max": option["max_duration"],
            "approvers": option["approvers"] or ("-" if option["approval_required"] else "no approval"),
        }
        for item in items
        for option in item["options"]
    ]
    print_table(
        rows,
        [
            ("path", "Resource"),
            ("type", "Type"),
            ("permission", "Permission"),
            ("flow", "Flow"),
            ("max", "Max"),
            ("approvers", "Approvers"),
        ],
        empty="nothing you may request matches; `sluice explain RESOURCE PERMISSION` says why",
    )
    if bundles:
        print_table(
            [{**b, "approvers": b["approvers"] or "no approval"} for b in bundles],
            [("bundle", "Bundle"), ("flow", "Flow"), ("max_duration", "Max"), ("approvers", "Approvers")],
            title="Bundles",
        )
    if offset is not None:
        err_console.print(
            f"[dim]showing the first {len(items)}; narrow with --path-prefix, --tag or --limit[/dim]"
        )


def explain_command(
    resource: Annotated[str, typer.Argument(help="A resource path or id.")],
    permission: Annotated[str, typer.Argument(help="The permission, e.g. read.")],
    identity: Annotated[
        str | None, typer.Option("--identity", help="Whose access (admin tokens); yourself by default.")
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """May someone request PERMISSION on RESOURCE? Each flow's verdict and why, and who would approve."""
    with ApiClient.from_options(url, token) as api:
        result = api.get("/explain", resource=resource, permission=permission, identity=identity)
    if as_json:
        print_json(result)
        return
    verdict = "[green]allowed[/green]" if result["allowed"] else "[red]not allowed[/red]"
    note(f"{verdict}: {result['summary']}")
    print_table(
        [
            {
                "flow": f["flow"],
                "allowed": f["allowed"],
                "reason": f["reason"],
                "approvers": f["approvers"] if f["allowed"] else None,
            }
            for f in result["flows"]
        ],
        [("flow", "Flow"), ("allowed", "Allows"), ("reason", "Why"), ("approvers", "Approvers")],
        empty="no access flow exists yet",
    )
    if not result["allowed"]:
        raise typer.Exit(1)


def register_targeting(app: typer.Typer) -> None:
    app.command("requestable")(requestable_command)
    app.command("explain")(explain_command)
