"""Trust: two installations of Sluice (two stores, say production and a staging copy or a laptop demo)
pointed at one PostgreSQL target never remove each other's logins.

Installation A keeps its store on PostgreSQL, installation B on SQLite; both manage the same target
database with the same role prefix, as two `sluice up --demo` would. B's orphan sweep and B's
`reconcile` leave A's live logins alone and still remove B's own orphan. Logins marked before
principals carried their installation (legacy) are removed only by the store that holds their row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import delete, select

from sluice.domain.states import Actual, Desired
from sluice.events.audit import Action
from sluice.services.grants.target_reconcile import reconcile_targets
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Grant
from tests.conftest import Clock
from tests.faults.harness import Setup, admin_params, can_read, expires, login_roles


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Setup]:
    """Installation B: a store of its own, on SQLite."""
    made = Setup.create(f"sqlite:///{tmp_path / 'b' / 'store.db'}", tmp_path / "b-home")
    try:
        yield made
    finally:
        made.engine.dispose()


def _both_on_one_target(
    setup: Setup, other: Setup, target_database: Callable[..., str], admin_url: str
) -> tuple[str, str]:
    database = target_database()
    prefix = setup.add_postgres("pg", admin_url, database)
    other.add_postgres("pg", admin_url, database, role_prefix=prefix)  # the same names, as two demos
    return database, prefix


def _password(setup: Setup, grant_id: str) -> str:
    row = next(g for g in setup.grants() if g.id == grant_id)
    return setup.box.open(row.credentials or "")


def _principal(setup: Setup, grant_id: str) -> str:
    return next(g.principal for g in setup.grants() if g.id == grant_id)


def _orphan_events(setup: Setup) -> list[AuditEvent]:
    with transaction(setup.factory) as session:
        query = select(AuditEvent).where(AuditEvent.action == Action.ORPHAN_REMOVED.value)
        return list(session.scalars(query))


def _mark_as_legacy(admin_url: str, role: str, grant_id: str) -> None:
    """The marker a login carried before markers named their installation."""
    with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                sql.Identifier(role), sql.Literal(f"sluice grant {grant_id} integration pg")
            )
        )


def test_one_installations_sweep_leaves_the_others_live_logins_and_removes_its_own_orphan(
    setup: Setup, other: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    database, prefix = _both_on_one_target(setup, other, target_database, postgres_admin_url)
    assert setup.hub().installation != other.hub().installation
    now = clock()
    theirs = setup.add_grants("pg", expires(now, [3600, 3600]), now=now)
    assert setup.worker(clock).run_once() == 2
    [lost] = other.add_grants("pg", expires(now, [3600]), now=now)
    b_worker = other.worker(clock)
    assert b_worker.run_once() == 1
    lost_principal = _principal(other, lost)
    with transaction(other.factory) as session:  # B's own row is lost: its login is B's orphan
        session.execute(delete(Grant).where(Grant.id == lost))
    a_logins = {_principal(setup, g) for g in theirs}
    assert login_roles(postgres_admin_url, prefix) == a_logins | {lost_principal}

    assert b_worker.sweep_orphans() == 1

    assert login_roles(postgres_admin_url, prefix) == a_logins
    for grant_id in theirs:
        assert can_read(postgres_admin_url, database, _principal(setup, grant_id), _password(setup, grant_id))
    assert [(e.details["grant_id"], e.details["principal"]) for e in _orphan_events(other)] == [
        (lost, lost_principal)
    ]
    # `sluice reconcile` on B (a restore check, or SLUICE_RECONCILE_ON_START) agrees: nothing to do.
    assert reconcile_targets(other.factory, other.hub(), clock=clock, dry_run=False) == []
    assert login_roles(postgres_admin_url, prefix) == a_logins
    # And A, whose rows say both are live, finds nothing to fix either.
    assert setup.worker(clock).sweep_orphans() == 0
    assert reconcile_targets(setup.factory, setup.hub(), clock=clock, dry_run=True) == []
    assert _orphan_events(setup) == []


def test_a_legacy_login_is_removed_only_by_the_installation_holding_its_grant_row(
    setup: Setup, other: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    """An upgraded installation still cleans its own old logins; one it cannot prove is its own, it
    leaves alone and shows as `unclaimed`."""
    database, prefix = _both_on_one_target(setup, other, target_database, postgres_admin_url)
    now = clock()
    live, ended, stranger = setup.add_grants("pg", expires(now, [3600, 3600, 3600]), now=now)
    assert setup.worker(clock).run_once() == 3
    for grant_id in (live, ended, stranger):
        _mark_as_legacy(postgres_admin_url, _principal(setup, grant_id), grant_id)
    with transaction(setup.factory) as session:
        # `ended`: the store says the access is gone, yet the login is there (a restored target, say);
        # `stranger`: a login no row of A explains any more.
        row = session.get(Grant, ended)
        assert row is not None
        row.desired, row.actual = Desired.REVOKED, Actual.REVOKED
        session.execute(delete(Grant).where(Grant.id == stranger))
    everything = {_principal(setup, g) for g in (live, ended)} | {prefix + stranger.split("_", 1)[1]}
    assert login_roles(postgres_admin_url, prefix) == everything

    # B holds no row for any of them: it leaves all three alone, and says so.
    assert other.worker(clock).sweep_orphans() == 0
    shown = reconcile_targets(other.factory, other.hub(), clock=clock, dry_run=True)
    assert {(d.kind, d.grant_id) for d in shown} == {("unclaimed", g) for g in (live, ended, stranger)}
    assert login_roles(postgres_admin_url, prefix) == everything

    # A adopts the two it has rows for: keeps the live one, removes the ended one; the stranger stays.
    assert setup.worker(clock).sweep_orphans() == 1
    assert login_roles(postgres_admin_url, prefix) == everything - {_principal(setup, ended)}
    assert can_read(postgres_admin_url, database, _principal(setup, live), _password(setup, live))
    assert [e.details["grant_id"] for e in _orphan_events(setup)] == [ended]
