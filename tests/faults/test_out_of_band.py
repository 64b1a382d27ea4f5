"""Quality: what others do to the target behind Sluice's back never leaves access behind.

A DBA drops a role by hand: its expiry still succeeds, first time, with no error. A role Sluice made is
left with no grant row at all (a lost row): the orphan sweep removes it and says so in the audit log."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy import delete, select

from sluice.domain.states import Actual, Desired
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Grant
from tests.conftest import Clock
from tests.faults.harness import Setup, admin_params, can_read, expires, login_roles


def test_expiry_succeeds_when_a_dba_dropped_the_role_by_hand(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    now = clock()
    dropped, kept = setup.add_grants("pg", expires(now, [60, 60]), now=now)
    worker = setup.worker(clock)
    assert worker.run_once() == 2
    with psycopg.connect(**admin_params(postgres_admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(prefix + dropped.split("_", 1)[1])))
    clock.advance(seconds=61)
    assert worker.run_once() == 2
    for grant in setup.grants():
        assert (grant.desired, grant.actual, grant.attempts, grant.last_error) == (
            Desired.REVOKED,
            Actual.REVOKED,
            0,
            None,
        )
    assert login_roles(postgres_admin_url, prefix) == set()
    assert kept


def test_a_role_whose_grant_row_was_lost_is_removed_by_the_orphan_sweep(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    now = clock()
    lost, live = setup.add_grants("pg", expires(now, [3600, 3600]), now=now)
    worker = setup.worker(clock)
    worker.run_once()
    live_row = next(g for g in setup.grants() if g.id == live)
    password = setup.box.open(live_row.credentials or "")
    with transaction(setup.factory) as session:  # a restore, a bug, a hand: the row is gone
        session.execute(delete(Grant).where(Grant.id == lost))
    assert len(login_roles(postgres_admin_url, prefix)) == 2

    assert worker.sweep_orphans() == 1
    assert login_roles(postgres_admin_url, prefix) == {live_row.principal}
    assert can_read(postgres_admin_url, database, live_row.principal, password)  # the live grant is untouched
    with transaction(setup.factory) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "target.orphan_removed")).one()
        assert event.details["grant_id"] == lost
