"""Grants in every interesting state for the admin listing: one active, one pending, and a revoke
that keeps failing (`revoke_failed`) on a PostgreSQL integration whose server is down."""

from __future__ import annotations

import socket
from datetime import timedelta

from sqlalchemy import select

from sluice.domain.states import Actual, Desired
from sluice.runtime.tuning import Tuning
from sluice.store.db import transaction
from sluice.store.tables import Grant, Identity, Integration
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.api.conftest import Api, email


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dead_pg_grant(api: Api, who: str) -> str:
    """A grant made earlier on a PostgreSQL integration that is down now, ending in a minute."""
    now = api.clock()
    with transaction(api.runtime.factory) as session:
        integration = Integration(
            id=new_id("int"),
            name="dead-pg",
            kind="postgresql",
            config={"port": closed_port(), "databases": ["app"], "connect_timeout_seconds": 1},
            created_at=now,
            updated_at=now,
        )
        session.add(integration)
        person = session.scalars(select(Identity).where(Identity.email == email(who))).one()
        grant_id = new_id("gr")
        session.add(
            Grant(
                id=grant_id,
                identity_id=person.id,
                integration=integration,
                resource_path="dead-pg/app/public/orders",
                resource_type="table",
                permission="read",
                desired=Desired.ACTIVE,
                actual=Actual.ACTIVE,
                duration_seconds=60,
                starts_at=now,
                ends_at=now + timedelta(minutes=1),
                principal=api.runtime.hub.for_integration(integration).principal_for(grant_id, email(who)),
                created_at=now,
                updated_at=now,
            )
        )
    return grant_id


def stuck_worker(api: Api) -> Worker:
    """A worker that declares a revoke `revoke_failed` at its first failure."""
    return Worker(
        api.runtime.factory,
        hub=api.runtime.hub,
        box=api.runtime.box,
        clock=api.clock,
        worker_id="stuck-worker",
        sync_inventory=False,
        tuning=Tuning(revoke_failed_after=timedelta(0)),
    )


def mixed_grants(api: Api) -> dict[str, str]:
    """An active grant of alice's, a pending one of dave's, and a revoke of carol's that keeps failing;
    their ids by those names."""
    stuck = dead_pg_grant(api, "carol")
    active = api.ask("alice")
    assert api.post("bob", f"/requests/{active['id']}/approve").status_code == 200
    pending = api.ask("dave", group="dba")
    api.clock.advance(minutes=2)
    stuck_worker(api).run_once()
    return {
        "active": active["grants"][0]["id"],
        "pending": pending["grants"][0]["id"],
        "stuck": stuck,
    }
