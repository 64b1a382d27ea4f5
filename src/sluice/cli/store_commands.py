"""Commands that work on the store directly, with no server: migrations, config apply/plan, the audit
chain (the store-side token bootstrap is in `token_commands`).
The work itself is in `store_ops`, imported when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt
from sluice.cli.output import print_json, print_line

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)

FileOpt = Annotated[Path, typer.Option("--file", "-f", help="The config file (YAML).", dir_okay=False)]


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the store's tables to the newest version; show its installation id (the mark
    on every principal it creates in targets)."""
    from sluice.cli import store_ops

    runtime = store_ops.open_runtime()
    before, after = store_ops.migrate_store(runtime)
    label = store_ops.store_label(runtime.settings)
    installation = runtime.hub.installation
    if as_json:
        print_json(
            {
                "store": label,
                "upgraded": before != after,
                "from": before,
                "to": after,
                "installation": installation,
            }
        )
    elif before == after:
        print_line(f"store {label} was already up to date (revision {after}, installation {installation})")
    else:
        print_line(
            f"store {label} migrated from revision {before or 'none (empty)'} to {after} "
            f"(installation {installation})"
        )


def _plan(file: Path, *, apply: bool, as_json: bool) -> None:
    from sluice.cli import store_ops

    plan = store_ops.plan_file(store_ops.open_runtime(), file, apply=apply)
    if as_json:
        print_json(store_ops.plan_as_dict(plan, applied=apply))
    else:
        store_ops.print_plan(plan, applied=apply)


def apply_command(
    file: FileOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the store match a config file (identities, groups, integrations, flows), in one transaction."""
    _plan(file, apply=not dry_run, as_json=as_json)


def plan_command(file: FileOpt, as_json: JsonOpt = False) -> None:
    """Show what `sluice apply` would change."""
    _plan(file, apply=False, as_json=as_json)


def audit_verify(
    expect: Annotated[
        str | None,
        typer.Option("--expect", help="A head exported earlier (SEQ:HASH): the chain must pass through it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the audit log's hash chain on the store; exits 1 at the first edited, deleted or moved event."""
    from sluice.cli import store_ops

    report = store_ops.verify_audit(store_ops.open_runtime(), expect=expect)
    if as_json:
        print_json(report.as_dict())
    elif report.ok:
        unchained = f"; {report.unchained} older event(s) predate the chain" if report.unchained else ""
        print_line(f"audit chain intact: {report.checked} event(s), head {report.head}{unchained}")
    if not report.ok:
        raise CliError(f"audit chain broken: {report.problem}", notes=_event_note(report.problem_event_id))


def _event_note(event_id: int | None) -> list[str]:
    return [f"first event that does not fit: id {event_id}"] if event_id is not None else []
