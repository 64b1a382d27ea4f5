"""The `sluice` command: the Typer app and its sub-apps."""

from __future__ import annotations

import typer

from sluice.cli import (
    login_commands,
    policy_commands,
    reconcile_command,
    serve,
    store_commands,
    token_commands,
)
from sluice.cli.access_commands import access_app
from sluice.cli.catalog_commands import audit_app, inventory_app, register_listings
from sluice.cli.directory_commands import directory_app
from sluice.cli.errors import ErrorHandlingGroup
from sluice.cli.grant_commands import grants_app
from sluice.cli.integration_commands import integrations_app
from sluice.cli.key_commands import keys_app
from sluice.cli.people_admin_commands import groups_app, identities_app
from sluice.cli.people_commands import register_people
from sluice.cli.report_commands import report_app
from sluice.cli.request_commands import request_app
from sluice.cli.scim_commands import scim_app
from sluice.cli.ssh_key_command import ssh_key_command
from sluice.cli.tag_commands import tags_app
from sluice.cli.targeting_commands import register_targeting
from sluice.cli.webhook_commands import webhooks_app

app = typer.Typer(
    name="sluice",
    cls=ErrorHandlingGroup,
    help="Sluice: just-in-time access, granted by policy and taken away on time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("up")(serve.up)
app.command("login")(login_commands.login)
app.command("logout")(login_commands.logout)
app.command("server")(serve.server)
app.command("worker")(serve.worker)
app.add_typer(store_commands.db_app, name="db")
app.command("apply")(store_commands.apply_command)
app.command("plan")(store_commands.plan_command)
app.command("test")(policy_commands.test_command)
app.command("reconcile")(reconcile_command.reconcile)
app.add_typer(token_commands.token_app, name="token")
app.add_typer(token_commands.service_account_app, name="service-account")
app.add_typer(store_commands.config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(scim_app, name="scim")
app.add_typer(directory_app, name="directory")
app.add_typer(request_app, name="request")
app.add_typer(access_app, name="access")
access_app.command("ssh-key")(ssh_key_command)
app.add_typer(grants_app, name="grants")
inventory_app.command("export")(policy_commands.inventory_export)
app.add_typer(inventory_app, name="inventory")
app.add_typer(tags_app, name="tags")
app.add_typer(identities_app, name="identities")
app.add_typer(groups_app, name="groups")
audit_app.command("verify")(store_commands.audit_verify)
app.add_typer(audit_app, name="audit")
app.add_typer(integrations_app, name="integrations")
app.add_typer(report_app, name="report")
app.add_typer(webhooks_app, name="webhooks")
register_listings(app)
register_targeting(app)
register_people(app, access_app)

if __name__ == "__main__":
    app()
