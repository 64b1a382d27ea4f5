"""Apply step for the access flows the file declares: created, changed (the whole spec is compared)
and deleted when the file no longer names one it manages, with a warning for requests still waiting."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from sluice.domain.states import RequestStatus
from sluice.services.config.checks import CONFIG_SOURCE
from sluice.services.config.reconciler import Reconciler
from sluice.store.tables import AccessFlow, AccessRequest
from sluice.store.types import new_id


def reconcile_flows(walker: Reconciler) -> None:
    session = walker.session
    names = [flow.name for flow in walker.doc.flows]
    rows = session.scalars(
        select(AccessFlow).where(or_(AccessFlow.source == CONFIG_SOURCE, AccessFlow.name.in_(names)))
    )
    existing = {row.name: row for row in rows}
    for flow in walker.doc.flows:
        spec = flow.model_dump(mode="json")
        row = existing.get(flow.name)
        if row is None:
            if walker.write:
                session.add(
                    AccessFlow(
                        id=new_id("flow"),
                        name=flow.name,
                        spec=spec,
                        source=CONFIG_SOURCE,
                        created_at=walker.now,
                        updated_at=walker.now,
                    )
                )
            walker.created("flow", flow.name)
            continue
        changed = sorted(k for k in spec.keys() | row.spec.keys() if spec.get(k) != row.spec.get(k))
        if row.source != CONFIG_SOURCE:
            changed.append("source")
        if changed:
            if walker.write:
                row.spec = spec
                row.source = CONFIG_SOURCE
                row.updated_at = walker.now
            walker.changed("flow", flow.name, changed)
    for name, row in existing.items():
        if name not in names and row.source == CONFIG_SOURCE:
            _warn_pending_requests(walker, name)
            if walker.write:
                session.delete(row)
            walker.removed("flow", name)


def _warn_pending_requests(walker: Reconciler, flow: str) -> None:
    pending = walker.session.scalar(
        select(func.count())
        .select_from(AccessRequest)
        .where(AccessRequest.flow_name == flow, AccessRequest.status == RequestStatus.PENDING)
    )
    if pending:
        walker.plan.warnings.append(
            f"flow {flow!r} is removed while {pending} request(s) under it wait for approval; "
            "they can no longer be approved"
        )
