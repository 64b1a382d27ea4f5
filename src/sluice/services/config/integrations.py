"""Apply steps for the integrations the file declares. An integration is deleted only when no grant
refers to it, and changes kind only while none of its grants is live."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from sluice.domain.lifecycle import Lifecycle
from sluice.services.config.checks import CONFIG_SOURCE
from sluice.services.config.reconciler import Reconciler, assign, differences
from sluice.store.grant_states import grant_is_live
from sluice.store.tables import Grant, Integration
from sluice.store.types import new_id


def _grant_count(walker: Reconciler, integration_id: str, *, live_only: bool) -> int:
    query = select(func.count()).select_from(Grant).where(Grant.integration_id == integration_id)
    if live_only:
        query = query.where(grant_is_live())
    return walker.session.scalar(query) or 0


def reconcile_integrations(walker: Reconciler) -> None:
    session = walker.session
    names = [spec.name for spec in walker.doc.integrations]
    rows = session.scalars(
        select(Integration).where(or_(Integration.source == CONFIG_SOURCE, Integration.name.in_(names)))
    )
    existing = {row.name: row for row in rows}
    for spec in walker.doc.integrations:
        wanted = {
            "kind": spec.kind,
            "config": spec.config,
            "owner": spec.owner,
            "sync_interval_seconds": spec.sync_interval_seconds,
            "disabled": spec.disabled,
            "source": CONFIG_SOURCE,
        }
        row = existing.get(spec.name)
        if row is None:
            if walker.write:
                row = Integration(
                    id=new_id("int"), name=spec.name, created_at=walker.now, updated_at=walker.now
                )
                assign(row, wanted)
                session.add(row)
            walker.created("integration", spec.name)
            continue
        if row.lifecycle == Lifecycle.RETIRED:
            walker.conflicts.append(f"integration {spec.name!r} is retired; give a new one another name")
            continue
        changed = differences(row, wanted)
        if "kind" in changed and (live := _grant_count(walker, row.id, live_only=True)):
            walker.conflicts.append(
                f"integration {spec.name!r} cannot change kind from {row.kind} to {spec.kind} while it "
                f"has {live} live grant(s) (pending or active); revoke them or wait for them to end first"
            )
        if changed:
            if walker.write:
                assign(row, wanted)
                row.updated_at = walker.now
            walker.changed("integration", spec.name, changed)
    for name, row in existing.items():
        if name not in names and row.source == CONFIG_SOURCE:
            _remove_integration(walker, row)


def _remove_integration(walker: Reconciler, row: Integration) -> None:
    if row.lifecycle == Lifecycle.RETIRED:
        return  # its history stays; nothing of it is left in the target
    live = _grant_count(walker, row.id, live_only=True)
    if live:
        walker.conflicts.append(
            f"integration {row.name!r} is no longer in the config but has {live} live grant(s) (pending "
            "or active in the target); revoke them or wait for them to end, then apply again"
        )
        return
    ended = _grant_count(walker, row.id, live_only=False)
    if ended:
        walker.conflicts.append(
            f"integration {row.name!r} is no longer in the config but {ended} ended grant(s) in the "
            "history still refer to it, so it cannot be deleted; keep it in the config"
        )
        return
    if walker.write:
        walker.session.delete(row)
    walker.removed("integration", row.name)
