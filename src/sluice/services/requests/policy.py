"""Policy questions asked against the store *now*: the flows, and whether asking depends on shifts.
Who may approve, revoke or extend is `services.approvals`' question alone."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Subject
from sluice.services.targeting.bundles import current_flows
from sluice.store.tables import AccessFlow


def load_flows(session: Session) -> list[FlowSpec]:
    """Every flow, with its bundle and scope references resolved to what they name now. One query
    reads the stored texts; they are parsed (and resolved) again only when one of them changed."""
    return current_flows(session)


def _mentions_shift(subject: Subject) -> bool:
    if subject.shift or subject.attribute == "shift":
        return True
    return any(_mentions_shift(child) for child in (subject.all or []) + (subject.any or []))


def requesting_needs_shifts(flows: list[FlowSpec]) -> bool:
    """Whether asking under these flows depends on who is on call: some requester or grantee
    condition names a shift. When none does, the schedules need not be read to check a request."""
    return any(
        _mentions_shift(subject)
        for flow in flows
        for subject in (*flow.requesters, *(flow.grantees or ()), *(flow.on_behalf or ()))
    )


def find_flow(session: Session, name: str) -> FlowSpec | None:
    """The flow named `name` as stored, or None when it no longer exists."""
    row = session.scalar(select(AccessFlow).where(AccessFlow.name == name))
    return None if row is None else FlowSpec.model_validate(row.spec)


def load_flow(session: Session, name: str) -> FlowSpec:
    flow = find_flow(session, name)
    if flow is None:
        raise Conflict(f"the access flow {name!r} no longer exists, so nobody can act on this request")
    return flow
