"""Commands that work on the store directly, with no server: migrations, config apply/plan, the audit
chain (the store-side token bootstrap is in `token_commands`).
The work itself is in `store_ops`, imported when a command runs."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.errors import EXIT_BAD_INPUT, CliError
from sluice.cli.options import JsonOpt
from sluice.cli.output import note, print_json, print_line

if TYPE_CHECKING:
    from sluice.services.config.access_diff import AccessDiff
    from sluice.services.config.apply import Plan

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
config_app = typer.Typer(help="The config as code.", no_args_is_help=True)

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


def _plan(file: Path, *, apply: bool, as_json: bool, access: bool = False, by_group: bool = False) -> None:
    from sluice.cli import store_ops

    runtime = store_ops.open_runtime()
    plan = store_ops.plan_file(runtime, file, apply=apply)
    diff = store_ops.access_diff_of_file(runtime, file) if access and not plan.is_empty else None
    _show(plan, diff, applied=apply, as_json=as_json, by_group=by_group)


def _show(plan: Plan, diff: AccessDiff | None, *, applied: bool, as_json: bool, by_group: bool) -> None:
    from sluice.cli import store_ops

    if as_json:
        found = store_ops.plan_as_dict(plan, applied=applied)
        if diff is not None:
            from sluice.services.config.access_diff import diff_as_dict
            from sluice.services.config.group_diff import by_group as diff_by_group

            found["access"] = diff_as_dict(diff)
            if by_group:
                found["access"]["groups"] = [group.as_dict() for group in diff_by_group(diff.people)]
        print_json(found)
        return
    store_ops.print_plan(plan, applied=applied)
    if diff is not None:
        store_ops.print_access_diff(diff, by_group=by_group)


def apply_command(
    file: FileOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the store match a config file (identities, groups, integrations, flows), in one transaction."""
    _plan(file, apply=not dry_run, as_json=as_json)


class DiffBy(StrEnum):
    PERSON = "person"
    GROUP = "group"


def plan_command(
    file: FileOpt,
    objects_only: Annotated[
        bool, typer.Option("--objects-only", help="List changed objects only, without the access diff.")
    ] = False,
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="Diff against this config file instead of the store (no store needed).",
            dir_okay=False,
        ),
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory", help="With --against: a snapshot from `sluice inventory export`.", dir_okay=False
        ),
    ] = None,
    by: Annotated[
        DiffBy, typer.Option("--by", help="Show the access diff per person or per group.")
    ] = DiffBy.PERSON,
    drift: Annotated[
        bool,
        typer.Option("--drift", help="Show what the store holds that the file does not, and nothing else."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show what `sluice apply` would change: the objects, then who gains and loses access."""
    from sluice.cli import plan_ops, store_ops

    if inventory is not None and against is None:
        raise CliError(
            "--inventory goes with --against (the store has its own inventory)", exit_code=EXIT_BAD_INPUT
        )
    if drift:
        if against is not None:
            raise CliError(
                "--drift compares the store with the file; it takes no --against", exit_code=EXIT_BAD_INPUT
            )
        found = plan_ops.drift_of_file(store_ops.open_runtime(), file)
        if as_json:
            print_json({"drift": [item.as_dict() for item in found]})
        else:
            plan_ops.print_drift(found)
        return
    if against is None:
        _plan(file, apply=False, as_json=as_json, access=not objects_only, by_group=by == DiffBy.GROUP)
        return
    plan, diff = plan_ops.plan_against(against, file, inventory=inventory, access=not objects_only)
    _show(plan, diff, applied=False, as_json=as_json, by_group=by == DiffBy.GROUP)


@config_app.command("export")
def config_export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of to stdout.", dir_okay=False)
    ] = None,
) -> None:
    """The store's integrations, flows, scopes, bundles, schedules, webhooks and config-declared people
    as a config file (YAML): keep a setup made through the API as code, and extend it."""
    from sluice.cli import store_ops

    text = store_ops.export_text(store_ops.open_runtime())
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        note(f"wrote {output}")


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
