"""`sluice token` and `sluice service-account`.

Two ways to make a token, told apart by `--email`:

* `sluice token create --name N [--expires 30d] [--scope read ...]` asks the server, as the signed-in
  user (`sluice login`, or SLUICE_TOKEN), for a personal token of one's own.
* `sluice token create --email X [--role admin]` is the store-side bootstrap: it writes a token
  straight into the store (run where the store is, no server needed). It is how the first admin
  gets in.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sluice.cli.client import ApiClient
from sluice.cli.errors import EXIT_BAD_INPUT, CliError
from sluice.cli.options import JsonOpt, TokenOpt, UrlOpt
from sluice.cli.output import console, err_console, note, print_json, print_line, print_table
from sluice.domain.roles import Role
from sluice.domain.tokens import Scope

token_app = typer.Typer(
    help="API tokens: your own through the server (--name), or the store-side bootstrap (--email).",
    no_args_is_help=True,
)
service_account_app = typer.Typer(
    help="Service accounts (admin): non-human identities for automation.", no_args_is_help=True
)

ScopeOpt = Annotated[
    list[Scope] | None,
    typer.Option(
        "--scope",
        case_sensitive=False,
        help="What the token may do (repeat): read, request, approve, admin \\[default: read, request].",
        show_default=False,
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires",
        help="How long it lives: 30d, 12h, or never (where allowed) \\[default: the server's, 30d].",
        show_default=False,
    ),
]
TOKEN_COLUMNS = [
    ("id", "Id"),
    ("name", "Name"),
    ("owner", "Owner"),
    ("prefix", "Prefix"),
    ("scopes", "Scopes"),
    ("state", "State"),
    ("expires_at", "Expires"),
    ("last_used_at", "Last used"),
]
ACCOUNT_COLUMNS = [
    ("name", "Name"),
    ("email", "Identity"),
    ("role", "Role"),
    ("owner", "Owner"),
    ("active", "Active"),
    ("description", "Description"),
]


def _body(name: str, expires: str | None, scopes: list[Scope] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if expires is not None:
        body["expires"] = expires
    if scopes:
        body["scopes"] = [scope.value for scope in dict.fromkeys(scopes)]
    return body


def _show_new_token(made: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(made)
        return
    print_line(made["token"])
    if console.is_terminal:
        ends = made.get("expires_at") or "never"
        scopes = ", ".join(made.get("scopes", []))
        note(f"[dim]{made['name']} ({scopes}), expires {ends}; shown once: keep it now[/dim]")


@token_app.command("create")
def token_create(
    name: Annotated[
        str | None, typer.Option("--name", help="Your token's name (unique among yours).")
    ] = None,
    expires: ExpiresOpt = None,
    scopes: ScopeOpt = None,
    email: Annotated[
        str | None,
        typer.Option(
            "--email",
            help="Store-side bootstrap: write a token for this identity straight into the store (no server).",
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="With --email: the same as --role admin.")] = False,
    role: Annotated[
        Role | None,
        typer.Option(
            "--role", case_sensitive=False, help="With --email: user, auditor (reads all), operator or admin."
        ),
    ] = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create an API token and print only the token (shown once, stored as a hash).

    With --name: a token of your own, asked of the server as the signed-in user.

    With --email: the store-side bootstrap, written into the store (how the first admin gets in).

    A bootstrap token has every scope its role allows and lives until revoked unless --expires says.
    """
    if email is not None:
        _bootstrap(
            email=email,
            admin=admin,
            role=role,
            expires=expires,
            named=name,
            scoped=bool(scopes),
            as_json=as_json,
        )
        return
    if admin or role is not None:
        raise CliError(
            "--admin and --role go with --email (the store-side bootstrap)", exit_code=EXIT_BAD_INPUT
        )
    if not name:
        raise CliError(
            "give your token a --name (or --email for the store-side bootstrap)", exit_code=EXIT_BAD_INPUT
        )
    with ApiClient.from_options(url, token) as api:
        made = api.post("/tokens", _body(name, expires, scopes))
    _show_new_token(made, as_json)


def _bootstrap(
    *,
    email: str,
    admin: bool,
    role: Role | None,
    expires: str | None,
    named: str | None,
    scoped: bool,
    as_json: bool,
) -> None:
    from sluice.cli import store_ops

    if named is not None or scoped:
        raise CliError(
            "--name and --scope are for your own tokens (through the server); a store-side bootstrap "
            "token (--email) has every scope its role allows",
            exit_code=EXIT_BAD_INPUT,
        )
    if admin and role not in (None, Role.ADMIN):
        raise CliError(f"--admin and --role {role} disagree; give one of them", exit_code=EXIT_BAD_INPUT)
    chosen = Role.ADMIN if admin else role or Role.USER
    made = store_ops.new_token(store_ops.open_runtime(), email=email, role=chosen, expires=expires)
    if as_json:
        print_json({"token": made})
        return
    print_line(made)
    if console.is_terminal:
        note("[dim]use it with: export SLUICE_TOKEN=<the token above>[/dim]")


@token_app.command("list")
def token_list(
    everyone: Annotated[bool, typer.Option("--all", help="Everyone's tokens (admin).")] = False,
    owner: Annotated[str | None, typer.Option("--owner", help="This identity's tokens (admin).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, newest first.")] = 1000,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Your API tokens (never their secrets); admins: --all or --owner."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages("/tokens", limit=limit, owner=owner, all="true" if everyone else None)
    if as_json:
        print_json({"items": items, "total": total})
        return
    rows = [
        {**item, "scopes": ",".join(item["scopes"]), "name": item["name"] or "(bootstrap)"} for item in items
    ]
    print_table(rows, TOKEN_COLUMNS, empty="no tokens")
    if total > len(items):
        err_console.print(f"[dim]showing {len(items)} of {total}; raise --limit[/dim]")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `sluice token list`).")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Revoke an API token: yours, or (admin) anyone's. It stops working at once."""
    with ApiClient.from_options(url, token) as api:
        revoked = api.request("DELETE", f"/tokens/{token_id}")
    if as_json:
        print_json(revoked)
    else:
        print_line(f"revoked {revoked['id']} ({revoked['name'] or 'bootstrap'}, {revoked['owner']})")


@service_account_app.command("create")
def account_create(
    name: Annotated[str, typer.Argument(help="Lowercase letters, digits and '-'.")],
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="The most its tokens may do.")
    ] = Role.USER,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a service account, owned by you (an admin)."""
    with ApiClient.from_options(url, token) as api:
        made = api.post("/service-accounts", {"name": name, "description": description, "role": role.value})
    if as_json:
        print_json(made)
    else:
        print_line(f"created service account {made['name']} ({made['email']}, role {made['role']})")


@service_account_app.command("list")
def account_list(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 1000,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Every service account."""
    with ApiClient.from_options(url, token) as api:
        items, total = api.get_pages("/service-accounts", limit=limit)
    if as_json:
        print_json({"items": items, "total": total})
    else:
        print_table(items, ACCOUNT_COLUMNS, empty="no service accounts")


@service_account_app.command("disable")
def account_disable(
    name: Annotated[str, typer.Argument(help="The service account.")],
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Disable a service account: every token of it stops at once, its access is re-evaluated."""
    with ApiClient.from_options(url, token) as api:
        disabled = api.post(f"/service-accounts/{name}/disable")
    if as_json:
        print_json(disabled)
    else:
        print_line(f"disabled service account {disabled['name']}")


@service_account_app.command("token")
def account_token(
    account: Annotated[str, typer.Argument(help="The service account.")],
    name: Annotated[str, typer.Option("--name", help="The token's name (unique among the account's).")],
    expires: ExpiresOpt = None,
    scopes: ScopeOpt = None,
    as_json: JsonOpt = False,
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Create a token for a service account (admin); prints only the token, shown once."""
    with ApiClient.from_options(url, token) as api:
        made = api.post(f"/service-accounts/{account}/tokens", _body(name, expires, scopes))
    _show_new_token(made, as_json)
