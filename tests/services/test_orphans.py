"""The one orphan rule, as the worker's sweep and `sluice reconcile` both apply it (built-in groups, so
no target server is needed; tests/faults/test_two_installations.py has two stores on PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import delete, select

from sluice.domain.states import Actual, Desired
from sluice.services.grants.memberships import StoreMemberships
from sluice.services.grants.target_reconcile import reconcile_targets
from sluice.store.db import transaction
from sluice.store.queries import installation_id
from sluice.store.tables import AuditEvent, Grant
from tests.services.conftest import Store, approved_oncall_request


def _grant(store: Store, grant_id: str) -> Grant:
    with transaction(store.factory) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        return grant


def test_reconcile_finds_nothing_to_fix_for_a_live_builtin_group_grant(store: Store) -> None:
    """The principal a built-in group lists (`group:grant`) is not the row's (an email): reconcile
    once took every such membership for an orphan, and every active grant for missing."""
    grant_id = approved_oncall_request(store)
    store.worker().run_once()
    assert _grant(store, grant_id).actual == Actual.ACTIVE

    assert reconcile_targets(store.factory, store.hub, clock=store.clock, dry_run=True) == []
    assert reconcile_targets(store.factory, store.hub, clock=store.clock, dry_run=False) == []
    row = _grant(store, grant_id)
    assert (row.desired, row.actual) == (Desired.ACTIVE, Actual.ACTIVE)


def test_sweep_and_reconcile_remove_a_membership_whose_row_is_gone_the_same_way(store: Store) -> None:
    worker = store.worker()
    lost = approved_oncall_request(store)
    worker.run_once()  # its first pass sweeps; the next one comes after the sweep interval
    with transaction(store.factory) as session:
        session.execute(delete(Grant).where(Grant.id == lost))
    live = approved_oncall_request(store)
    worker.run_once()

    shown = reconcile_targets(store.factory, store.hub, clock=store.clock, dry_run=True)
    assert [(d.kind, d.grant_id, d.principal, d.done) for d in shown] == [
        ("orphan", lost, f"oncall:{lost}", False)
    ]
    assert worker.sweep_orphans() == 1  # the worker's sweep removes what reconcile showed
    assert StoreMemberships(store.factory, "groups").list_grant_members() == [("oncall", live)]
    assert reconcile_targets(store.factory, store.hub, clock=store.clock, dry_run=True) == []
    with transaction(store.factory) as session:
        removed = session.scalars(select(AuditEvent).where(AuditEvent.action == "target.orphan_removed"))
        assert [e.details["grant_id"] for e in removed] == [lost]


def test_the_installation_id_is_made_once_and_read_the_same_everywhere(store: Store) -> None:
    with transaction(store.factory) as session:
        made = installation_id(session)
    assert len(made) == 16 and int(made, 16) >= 0
    assert store.hub.installation == made
    with transaction(store.factory) as session:
        assert installation_id(session) == made
