"""`sluice tags list|set|rm`: a resource's tags and the layer each comes from, and the injected ones
changed over the API (setting a key overrides its discovered value; removing it brings that back)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.client import ApiClient
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt, key_values
from sluice.cli.output import note, print_json, print_table

tags_app = typer.Typer(
    help="Resource tags: discovered in the target or injected over the API.", no_args_is_help=True
)

ResourceArg = Annotated[str, typer.Argument(help="A resource path or id, e.g. prod-pg/appdb/public/orders.")]

DISCOVERED = "discovered"
INJECTED_PREFIX = "api:"


def layer_of(tag: dict[str, Any]) -> str:
    """`discovered`, or `injected by EMAIL` for a value set over the API (which wins over a discovered
    one for the same key)."""
    source = str(tag.get("source") or "")
    if source.startswith(INJECTED_PREFIX):
        return f"injected by {source.removeprefix(INJECTED_PREFIX)}"
    return source or "-"


def _show_tags(listing: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(listing)
        return
    rows = [
        {
            **tag,
            "layer": layer_of(tag),
            "overrides": tag.get("discovered_value") if tag.get("source") != DISCOVERED else None,
        }
        for tag in listing.get("tags") or []
    ]
    print_table(
        rows,
        [("key", "Key"), ("value", "Value"), ("layer", "Layer"), ("overrides", "Discovered value")],
        title=str(listing.get("path") or ""),
        empty=f"{listing.get('path')} has no tags",
    )


@tags_app.command("list")
def list_tags(
    resource: ResourceArg, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """A resource's tags with the layer each value comes from (discovered or injected)."""
    with ApiClient.from_options(url, token) as api:
        _show_tags(api.get("/tags", resource=resource), as_json)


def _change(
    resource: str, change: dict[str, Any], url: str | None, token: str | None, as_json: bool
) -> dict[str, Any]:
    """Applies one change and prints the resource's tags after it; returns the batch counts."""
    with ApiClient.from_options(url, token) as api:
        counts = dict(api.post("/tags/batch", {"changes": [{"resource": resource, **change}]}) or {})
        listing = api.get("/tags", resource=resource)
    _show_tags(listing, as_json)
    return counts


@tags_app.command("set")
def set_tags(
    resource: ResourceArg,
    pairs: Annotated[list[str], typer.Argument(help="key=value pairs to inject.", metavar="KEY=VALUE...")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Inject tags on a resource (admin); other injected keys are kept. Prints the resulting tags."""
    _change(resource, {"set": key_values(pairs, "tag")}, url, token, as_json)


@tags_app.command("rm")
def remove_tags(
    resource: ResourceArg,
    keys: Annotated[list[str], typer.Argument(help="Keys whose injected value to remove.", metavar="KEY...")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Remove injected tags (admin); a discovered value for the key is in effect again."""
    wanted = sorted({k.strip() for k in keys})
    counts = _change(resource, {"delete": wanted}, url, token, as_json)
    if not as_json and counts.get("deleted", 0) < len(wanted):
        note(
            "[dim]a key without an injected value is left as it is (discovered tags follow the target)[/dim]"
        )
