"""Quality: the store going away mid-operation never leaves the target and the grant rows apart.

The store is made to refuse every connection (and its open ones are cut) right after the target call,
so the worker cannot record the outcome. After the store comes back, the row and the target agree:
the grant is made (idempotently) or, if it was cancelled meanwhile, the credential that was created but
never recorded is removed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from sluice.connectors.base import AccessUnit, Connector
from sluice.domain.states import Actual, Desired
from sluice.events.audit import Action
from sluice.services.grants.endings import end_grants
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.tables import Grant, Integration
from tests.conftest import Clock
from tests.faults.harness import Setup, admin_params, can_read, expires, login_roles


@contextmanager
def store_refusing(admin_url: str, store_url: str) -> Iterator[None]:
    database = store_url.rsplit("/", 1)[1]
    with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database)))
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [database])
    try:
        yield
    finally:
        with psycopg.connect(**admin_params(admin_url), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(database)))


class StoreDropsAfterGrant:
    """A real connector whose grant succeeds in the target, after which the store goes away."""

    def __init__(self, inner: Connector, on_granted: Callable[[], None]) -> None:
        self._inner = inner
        self._on_granted = on_granted

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        details = self._inner.grant(unit)
        self._on_granted()
        return details

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FaultyHub(ConnectorHub):
    def __init__(self, *args: Any, on_granted: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_granted = on_granted

    def for_integration(self, integration: Integration) -> Connector:
        return StoreDropsAfterGrant(super().for_integration(integration), self.on_granted)  # type: ignore[return-value]


@pytest.mark.parametrize("cancelled_meanwhile", [False, True])
def test_the_store_dropping_after_a_grant_leaves_row_and_target_in_agreement(
    setup: Setup,
    target_database: Callable[..., str],
    postgres_admin_url: str,
    clock: Clock,
    cancelled_meanwhile: bool,
) -> None:
    database = target_database()
    prefix = setup.add_postgres("pg", postgres_admin_url, database)
    now = clock()
    [grant_id] = setup.add_grants("pg", expires(now, [3600]), now=now)
    outage = store_refusing(postgres_admin_url, setup.store_url)
    hub = FaultyHub(setup.factory, on_granted=outage.__enter__)
    worker = setup.worker(clock, hub=hub, threads=1, per_integration=1)
    try:
        with pytest.raises(OperationalError):
            worker.run_once()  # the outcome could not be recorded, nor could the next claim be made
        assert len(login_roles(postgres_admin_url, prefix)) == 1  # the role exists; the row does not say so
    finally:
        outage.__exit__(None, None, None)
    setup.engine.dispose()  # connections the outage cut

    row = next(g for g in setup.grants())
    assert (row.desired, row.actual) == (Desired.ACTIVE, Actual.UNKNOWN)  # written before the target call
    if cancelled_meanwhile:
        with transaction(setup.factory) as session:
            grant = session.scalars(select(Grant).where(Grant.id == grant_id)).one()
            end_grants(
                session,
                [grant],
                now=clock(),
                actor="ada@example.com",
                action=Action.GRANT_REVOKE_REQUESTED,
                reason="not needed",
            )

    clock.advance(seconds=121)  # the dead claim's lease lapses
    recovered = setup.worker(clock, worker_id="w2")
    assert recovered.run_once() == 1
    row = next(g for g in setup.grants())
    roles = login_roles(postgres_admin_url, prefix)
    if cancelled_meanwhile:
        assert (row.desired, row.actual) == (Desired.REVOKED, Actual.REVOKED)
        assert roles == set()
    else:
        assert (row.desired, row.actual) == (Desired.ACTIVE, Actual.ACTIVE)
        assert roles == {row.principal}
        assert can_read(postgres_admin_url, database, row.principal, setup.box.open(row.credentials or ""))
