"""`sluice reconcile`: compare the targets with the store and fix differences toward the safer side
(after a restore from backup). Works on the store directly, like `sluice db upgrade`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.errors import CliError
from sluice.cli.options import JsonOpt
from sluice.cli.output import print_json, print_table

if TYPE_CHECKING:
    from sluice.services.grants.target_reconcile import Difference


def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences; change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare what the targets hold with the grants: remove access no live grant justifies, end
    grants the target no longer holds (never re-create them from possibly stale rows)."""
    from sluice.cli import store_ops
    from sluice.services.grants.target_reconcile import UNREACHABLE, reconcile_targets

    runtime = store_ops.open_runtime()
    store_ops.migrate_store(runtime)
    found = reconcile_targets(runtime.factory, runtime.hub, clock=runtime.clock, dry_run=dry_run)
    unreachable = sorted({d.integration for d in found if d.kind == UNREACHABLE})
    if as_json:
        print_json(
            {"dry_run": dry_run, "differences": [d.as_dict() for d in found], "not_compared": unreachable}
        )
    else:
        _print(found, dry_run=dry_run)
    if unreachable:
        # A script that runs reconcile after a restore must not take "could not look" for "all well".
        raise CliError(
            f"not compared (target unreachable): {', '.join(unreachable)}; run it again when they answer"
        )


def _print(found: list[Difference], *, dry_run: bool) -> None:
    print_table(
        [d.as_dict() for d in found],
        [
            ("integration", "integration"),
            ("kind", "difference"),
            ("principal", "principal"),
            ("grant_id", "grant"),
            ("action", "dry run: would" if dry_run else "action"),
            ("done", "done"),
        ],
        empty="the targets match the store",
    )
