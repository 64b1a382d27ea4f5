"""`sluice scim token create|revoke --source NAME`: the bearer tokens an identity provider pushes its
users and groups to /scim/v2 with. They work on the store directly, like `sluice token create`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.options import JsonOpt
from sluice.cli.output import console, note, print_json, print_line

scim_app = typer.Typer(
    help="SCIM directory sources (Okta, Entra ID, JumpCloud, OneLogin).", no_args_is_help=True
)
scim_token_app = typer.Typer(help="SCIM bearer tokens, one source each.", no_args_is_help=True)
scim_app.add_typer(scim_token_app, name="token")

SourceOpt = Annotated[
    str, typer.Option("--source", help="The directory source the token pushes for, e.g. okta or entra.")
]


@scim_token_app.command("create")
def scim_token_create(source: SourceOpt, as_json: JsonOpt = False) -> None:
    """Create a SCIM token; prints only the token (shown once, stored as a hash)."""
    from sluice.cli.store_ops import CLI_ACTOR, open_runtime
    from sluice.services.directory.scim_tokens import create_scim_token
    from sluice.store.db import transaction

    runtime = open_runtime()
    with transaction(runtime.factory) as session:
        token = create_scim_token(session, source=source, actor=CLI_ACTOR, now=runtime.clock())
    if as_json:
        print_json({"token": token, "source": source, "base_url": "<sluice URL>/scim/v2"})
        return
    print_line(token)
    if console.is_terminal:
        note("[dim]give the provider <sluice URL>/scim/v2 as the base URL and this as the bearer token[/dim]")


@scim_token_app.command("revoke")
def scim_token_revoke(source: SourceOpt, as_json: JsonOpt = False) -> None:
    """Revoke every SCIM token of a source (its users and groups stay)."""
    from sluice.cli.store_ops import CLI_ACTOR, open_runtime
    from sluice.services.directory.scim_tokens import revoke_scim_tokens
    from sluice.store.db import transaction

    runtime = open_runtime()
    with transaction(runtime.factory) as session:
        count = revoke_scim_tokens(session, source=source, actor=CLI_ACTOR, now=runtime.clock())
    if as_json:
        print_json({"source": source, "revoked": count})
        return
    print_line(f"revoked {count} SCIM token(s) of {source}")
