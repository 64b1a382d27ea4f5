"""`sluice identities` and `sluice groups`: list the directory, and (admins) change the people and
groups Sluice keeps itself. Rows a directory source owns (SCIM, LDAP) are refused by the server, which
says which source to change instead."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from sluice.cli.client import PAGE_SIZE, ApiClient
from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt, key_values
from sluice.cli.output import items_of, print_fields, print_json, print_table

identities_app = typer.Typer(
    help="List people and service accounts (no command); set/activate/deactivate change them (admin)."
)
groups_app = typer.Typer(
    help="List groups and members (no command); set/add-member/remove-member change them (admin)."
)

IDENTITY_COLUMNS = [
    ("email", "Email"),
    ("name", "Name"),
    ("active", "Active"),
    ("manager", "Manager"),
    ("groups", "Groups"),
]
GROUP_COLUMNS = [
    ("name", "Name"),
    ("description", "Description"),
    ("source", "Source"),
    ("members", "Members"),
]

EmailArg = Annotated[str, typer.Argument(help="The identity's email.")]
GroupArg = Annotated[str, typer.Argument(help="The group's name.")]
MembersArg = Annotated[list[str], typer.Argument(help="Member emails.", metavar="EMAIL...")]


def _identity_path(email: str) -> str:
    return f"/identities/{quote(email.strip(), safe='')}"


def _group_path(name: str) -> str:
    return f"/groups/{quote(name.strip(), safe='')}"


def _existing(api: ApiClient, path: str, missing: str) -> dict[str, Any]:
    """The object at `path`, or a clear error naming what is missing (a 404 from the server)."""
    try:
        return dict(api.get(path))
    except CliError as exc:
        if exc.status == 404:
            raise CliError(missing, status=404) from exc
        raise


def _group_row(group: dict[str, Any]) -> dict[str, Any]:
    members = [
        m.get("email", "") + (" (temporary)" if m.get("expires_at") else "")
        for m in group.get("members") or []
    ]
    return {**group, "members": members}


def _show_identity(identity: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(identity)
    else:
        print_fields(identity, title=identity.get("email"))


def _show_group(group: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(group)
        return
    print_fields({k: v for k, v in group.items() if k != "members"}, title=group.get("name"))
    print_table(
        group.get("members") or [],
        [("email", "Member"), ("source", "Source"), ("expires_at", "Until")],
        empty="no members",
    )


@identities_app.callback(invoke_without_command=True)
def identities(
    ctx: typer.Context, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """People and service accounts Sluice knows."""
    if ctx.invoked_subcommand is not None:
        return
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get("/identities", limit=PAGE_SIZE))
    if as_json:
        print_json(items)
    else:
        print_table(items, IDENTITY_COLUMNS)


@identities_app.command("set")
def identity_set(
    email: EmailArg,
    name: Annotated[str | None, typer.Option("--name", help="Display name.")] = None,
    manager: Annotated[str | None, typer.Option("--manager", help="The manager's email.")] = None,
    no_manager: Annotated[bool, typer.Option("--no-manager", help="Clear the manager.")] = False,
    attribute: Annotated[
        list[str] | None,
        typer.Option("--attribute", "-a", help="key=value; repeat. Other attributes are kept."),
    ] = None,
    remove_attribute: Annotated[
        list[str] | None, typer.Option("--remove-attribute", help="An attribute key to remove; repeat.")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            "-g",
            help="A group; repeat. These become its permanent groups (grants' temporary ones stay).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create an identity or change the fields given (admin); fields not given are left as they are."""
    if manager is not None and no_manager:
        raise CliError("--manager and --no-manager contradict each other")
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if manager is not None or no_manager:
        changes["manager"] = manager
    if group is not None:
        changes["groups"] = group
    added = key_values(attribute or [], "attribute")
    with ApiClient.from_options(url, token) as api:
        if added or remove_attribute:
            changes["attributes"] = _attributes_after(api, email, added, remove_attribute or [])
        if not changes:
            raise CliError("nothing to change: give --name, --manager, --attribute, --group…")
        _show_identity(api.patch(_identity_path(email), changes), as_json)


def _attributes_after(
    api: ApiClient, email: str, added: dict[str, str], removed: list[str]
) -> dict[str, Any]:
    """The identity's attributes with `added` merged in and `removed` left out (the API replaces the
    whole set); a new identity starts with none."""
    try:
        current = dict(api.get(_identity_path(email)).get("attributes") or {})
    except CliError as exc:
        if exc.status != 404:
            raise
        current = {}
    unknown = sorted(set(removed) - set(current))
    if unknown:
        raise CliError(f"{email} has no attribute {', '.join(unknown)}")
    return {k: v for k, v in {**current, **added}.items() if k not in removed}


def _set_active(email: str, active: bool, as_json: bool, url: str | None, token: str | None) -> None:
    with ApiClient.from_options(url, token) as api:
        _existing(api, _identity_path(email), f"no identity {email!r}")
        _show_identity(api.patch(_identity_path(email), {"active": active}), as_json)


@identities_app.command("deactivate")
def identity_deactivate(
    email: EmailArg, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """Mark an identity inactive (admin); the worker re-evaluates its access on its next pass."""
    _set_active(email, False, as_json, url, token)


@identities_app.command("activate")
def identity_activate(
    email: EmailArg, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """Mark an inactive identity active again (admin)."""
    _set_active(email, True, as_json, url, token)


@groups_app.callback(invoke_without_command=True)
def groups(ctx: typer.Context, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Groups and their members."""
    if ctx.invoked_subcommand is not None:
        return
    with ApiClient.from_options(url, token) as api:
        items = items_of(api.get("/groups", limit=PAGE_SIZE))
    if as_json:
        print_json(items)
    else:
        print_table([_group_row(i) for i in items], GROUP_COLUMNS)


@groups_app.command("set")
def group_set(
    name: GroupArg,
    member: Annotated[
        list[str] | None,
        typer.Option("--member", "-m", help="A member's email; repeat. The members, exactly."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description", help="What the group is for.")] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a group, change its description, or (with --member) replace its permanent members
    (admin); temporary members that grants added stay."""
    if member is None and description is None:
        raise CliError("nothing to change: give --member (repeat) and/or --description")
    with ApiClient.from_options(url, token) as api:
        if member is None:
            changed = api.patch(_group_path(name), {"description": description})
        else:
            body = {"members": member, "description": description}
            changed = api.put(_group_path(name), {k: v for k, v in body.items() if v is not None})
        _show_group(changed, as_json)


def _change_members(
    name: str, change: dict[str, list[str]], as_json: bool, url: str | None, token: str | None
) -> None:
    with ApiClient.from_options(url, token) as api:
        _existing(api, _group_path(name), f"no group {name!r}; create it with `sluice groups set {name}`")
        _show_group(api.patch(_group_path(name), change), as_json)


@groups_app.command("add-member")
def group_add_member(
    name: GroupArg, emails: MembersArg, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """Add members to a group (admin)."""
    _change_members(name, {"add": emails}, as_json, url, token)


@groups_app.command("remove-member")
def group_remove_member(
    name: GroupArg, emails: MembersArg, as_json: JsonOpt = False, url: UrlOpt = None, token: TokenOpt = None
) -> None:
    """Remove members from a group (admin)."""
    _change_members(name, {"remove": emails}, as_json, url, token)
