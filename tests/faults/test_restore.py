"""Quality: after the store is restored from an older backup, Sluice does not act blindly on stale rows.

The store database is really copied (`CREATE DATABASE … TEMPLATE`) and later restored from that copy.
Between the two, one grant was revoked and another made. `sluice reconcile --dry-run` shows both
differences and changes nothing; `sluice reconcile` removes the access no live grant justifies and
ends the stale row instead of re-creating what was revoked; the untouched grant keeps working."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import psycopg
from psycopg import sql

from sluice.domain.states import Actual, Desired
from sluice.events.audit import Action
from sluice.services.grants.endings import end_grants
from sluice.store.db import transaction
from sluice.store.tables import Grant
from tests.conftest import Clock
from tests.faults.harness import Setup, admin_params, can_read, expires, login_roles
from tests.faults.processes import SLUICE, sluice_env


def _copy_database(admin_url: str, source: str, target: str, *, replace: bool = False) -> None:
    with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
        if replace:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(target)))
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source))
        )


def _reconcile(setup: Setup, *args: str) -> list[dict]:
    done = subprocess.run(
        [SLUICE, "reconcile", "--json", *args],
        env=sluice_env(setup.store_url, setup.home, setup.secret_key),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["differences"]


def test_reconcile_after_a_restore_removes_unjustified_access_and_never_regrants(
    setup: Setup, target_database: Callable[..., str], postgres_admin_url: str, clock: Clock
) -> None:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    now = clock()
    kept, revoked_later = setup.add_grants("pg", expires(now, [3600, 3600]), now=now)
    worker = setup.worker(clock)
    worker.run_once()

    store = setup.store_url.rsplit("/", 1)[1]
    backup = store + "_bak"
    setup.engine.dispose()
    _copy_database(postgres_admin_url, store, backup)
    try:
        # After the backup: one grant revoked, another made.
        with transaction(setup.factory) as session:
            grant = session.get(Grant, revoked_later)
            assert grant is not None
            end_grants(
                session, [grant], now=clock(), actor="t", action=Action.GRANT_REVOKE_REQUESTED, reason=""
            )
        [made_later] = setup.add_grants("pg", expires(clock(), [3600]), now=clock())
        clock.advance(seconds=1)
        worker.run_once()
        rows = {g.id: g for g in setup.grants()}
        assert login_roles(postgres_admin_url, prefix) == {rows[kept].principal, rows[made_later].principal}

        setup.engine.dispose()
        _copy_database(postgres_admin_url, backup, store, replace=True)  # the restore
    finally:
        with psycopg.connect(**admin_params(postgres_admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(backup)))

    shown = _reconcile(setup, "--dry-run")
    assert {(d["kind"], d["principal"], d["done"]) for d in shown} == {
        ("orphan", rows[made_later].principal, False),
        ("missing", rows[revoked_later].principal, False),
    }
    assert login_roles(postgres_admin_url, prefix) == {rows[kept].principal, rows[made_later].principal}

    fixed = _reconcile(setup)
    assert {(d["kind"], d["done"]) for d in fixed} == {("orphan", True), ("missing", True)}
    assert login_roles(postgres_admin_url, prefix) == {rows[kept].principal}
    after = {g.id: g for g in setup.grants()}
    assert (after[revoked_later].desired, after[revoked_later].actual) == (Desired.REVOKED, Actual.REVOKED)
    assert worker.run_once() == 0  # nothing stale is acted on: the revoked grant is not re-created
    assert login_roles(postgres_admin_url, prefix) == {rows[kept].principal}
    assert can_read(
        postgres_admin_url, database, rows[kept].principal, setup.box.open(after[kept].credentials or "")
    )
    assert _reconcile(setup, "--dry-run") == []
