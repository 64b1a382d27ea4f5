"""`sluice reconcile`: compare the targets with the store and fix differences toward the safer side
(after a restore from backup). Works on the store directly, like `sluice db upgrade`."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.options import JsonOpt
from sluice.cli.output import print_json, print_table


def reconcile(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the differences; change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare what the targets hold with the grants: remove access no live grant justifies, end
    grants the target no longer holds (never re-create them from possibly stale rows)."""
    from sluice.cli import store_ops
    from sluice.services.grants.target_reconcile import reconcile_targets

    runtime = store_ops.open_runtime()
    store_ops.migrate_store(runtime)
    found = reconcile_targets(runtime.factory, runtime.hub, clock=runtime.clock, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "differences": [d.as_dict() for d in found]})
        return
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
