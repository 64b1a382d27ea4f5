"""End to end per connector, at the service level: request -> approve -> the worker grants in the
real target -> the target's own client shows the access -> the end time passes -> the worker revokes
-> the access is gone. And the orphan sweep: something Sluice made whose grant row is gone is removed.

The store is a SQLite file; the clock is injected and moved by hand, starting at the real time (the
targets' own second locks, such as PostgreSQL's VALID UNTIL, run on real time)."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import AccessUnit
from sluice.connectors.conformance import ConnectorHarness
from sluice.domain.connection import OtherConnection, client_command, client_env, connection_of
from sluice.domain.flows import FlowSpec
from sluice.domain.states import Actual, Desired
from sluice.services.grants.access import credentials_for
from sluice.services.grants.secrets import SecretBox
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import AccessFlow, Base, Grant, Identity, Integration
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.connectors.conformance.aws import AwsHarness
from tests.connectors.conformance.http import HttpHarness
from tests.connectors.conformance.ldap import ldap_harness
from tests.connectors.conformance.mysql import mysql_harness
from tests.connectors.conformance.pg import postgres_harness
from tests.connectors.conformance.redis import redis_harness
from tests.connectors.conformance.ssh import SshHarness

pytestmark = pytest.mark.e2e

REQUESTER, APPROVER = "ada@example.com", "carol@example.com"


@pytest.fixture(scope="module", params=["postgresql", "mysql", "redis", "ldap_groups", "http", "ssh", "aws"])
def harness(request: pytest.FixtureRequest) -> Iterator[ConnectorHarness]:
    kind = request.param
    if kind == "postgresql":
        yield from postgres_harness(request.getfixturevalue("postgres_admin_url"))
    elif kind == "mysql":
        yield from mysql_harness(request.getfixturevalue("mysql_server"))
    elif kind == "redis":
        yield from redis_harness(request.getfixturevalue("redis_server"))
    elif kind == "ldap_groups":
        yield from ldap_harness(request.getfixturevalue("slapd"))
    elif kind == "aws":
        yield AwsHarness(request.getfixturevalue("aws_org"))
    elif kind == "ssh":
        yield SshHarness(request.getfixturevalue("sshd"))
    else:
        yield HttpHarness(request.getfixturevalue("http_endpoint"))


class Setup:
    def __init__(self, tmp_path: Path, harness: ConnectorHarness) -> None:
        self.harness = harness
        self.name = harness.integration
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        Base.metadata.create_all(engine)
        self.factory: sessionmaker[Session] = make_session_factory(engine)
        self.hub = ConnectorHub(self.factory)
        self.box = SecretBox.load(tmp_path, None)
        self._seed()
        self.worker = Worker(self.factory, hub=self.hub, box=self.box, clock=self.clock, worker_id="e2e")

    def _seed(self) -> None:
        now = self.clock()
        config = self.harness.config.model_dump(mode="json", exclude_none=True)
        sample = self.harness.sample
        spec = FlowSpec.model_validate(
            {
                "name": "temporary-access",
                "requesters": [{"user": REQUESTER}],
                "targets": [
                    {
                        "integration": self.name,
                        "type": sample.resource_type,
                        "permissions": [sample.permission],
                    }
                ],
                "approvers": [{"user": APPROVER}],
                "max_duration": "1h",
            }
        )
        with transaction(self.factory) as session:
            for number, email in enumerate((REQUESTER, APPROVER)):
                session.add(
                    Identity(
                        id=f"id_{number}",
                        email=email,
                        name=email,
                        attributes={},
                        created_at=now,
                        updated_at=now,
                    )
                )
            session.add(
                Integration(
                    id="int_1",
                    name=self.name,
                    kind=type(self.harness.connector).kind,
                    config=config,
                    created_at=now,
                    updated_at=now,
                )
            )
            session.add(
                AccessFlow(
                    id="flow_1",
                    name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )

    def request_and_approve(self, minutes: int) -> str:
        sync_integration(self.factory, self.hub, self.name, clock=self.clock)
        now = self.clock()
        with transaction(self.factory) as session:
            request = submit_request(
                session,
                hub=self.hub,
                requester=self._who(session, REQUESTER),
                units=[UnitAsked(self.harness.sample.path, self.harness.sample.permission)],
                duration=timedelta(minutes=minutes),
                reason="incident 42",
                now=now,
            )
            approve_request(
                session, request_id=request.id, approver=self._who(session, APPROVER), reason="ok", now=now
            )
            return request.grants[0].id

    def _who(self, session: Session, email: str) -> Identity:
        found = identity_by_email(session, email)
        assert found is not None
        return found

    def grant_row(self, grant_id: str) -> Grant:
        with transaction(self.factory) as session:
            row = session.get(Grant, grant_id)
            assert row is not None
            session.expunge(row)
            return row

    def what_the_grantee_holds(self, grant_id: str) -> tuple[AccessUnit, dict[str, Any]]:
        """The unit and connection details as the grantee sees them (`sluice access credentials`)."""
        with transaction(self.factory) as session:
            details = credentials_for(
                session, grant_id=grant_id, viewer=self._who(session, REQUESTER), box=self.box
            )
        row = self.grant_row(grant_id)
        unit = AccessUnit(
            grant_id=row.id,
            principal=row.principal,
            grantee_email=REQUESTER,
            resource_type=row.resource_type,
            resource_path=row.resource_path,
            permission=row.permission,
            ends_at=row.ends_at,
            secret=details.get("password"),
        )
        return unit, details


def test_request_approve_use_expire(tmp_path: Path, harness: ConnectorHarness) -> None:
    setup = Setup(tmp_path, harness)
    grant_id = setup.request_and_approve(minutes=30)
    setup.worker.run_once()
    row = setup.grant_row(grant_id)
    assert (row.desired, row.actual, row.last_error) == (Desired.ACTIVE, Actual.ACTIVE, None)
    unit, details = setup.what_the_grantee_holds(grant_id)
    assert harness.can_use(unit, details), "the target's own client does not show the access"
    session = harness.open_session(unit, details)

    setup.clock.advance(minutes=29)
    setup.worker.run_once()
    assert harness.can_use(unit, details), "the access ended before its time"

    setup.clock.advance(minutes=1, seconds=1)
    setup.worker.run_once()
    row = setup.grant_row(grant_id)
    assert (row.desired, row.actual) == (Desired.REVOKED, Actual.REVOKED)
    assert row.end_reason == "lease ended"
    assert not harness.can_use(unit, details), "the access outlived its lease"
    if harness.has_sessions:
        assert not harness.session_alive(session), "a session outlived the lease"
    assert unit.principal not in {m.principal for m in harness.connector.list_managed()}


def test_the_orphan_sweep_removes_what_no_grant_row_explains(
    tmp_path: Path, harness: ConnectorHarness
) -> None:
    """Only this installation's orphans: a principal another installation of Sluice (another store)
    made on the same target is not this store's to judge, and survives the sweep."""
    setup = Setup(tmp_path, harness)
    ours = harness.sibling(installation=setup.hub.installation)
    orphan = harness.unit(connector=ours)  # as by a grant whose row is gone (a restored backup, say)
    details = ours.grant(orphan)
    # The harness connector works for another installation; another resource, so that a membership
    # both would need (LDAP) does not blur what each sweep removed.
    theirs = harness.unit(harness.hostile, email=harness.hostile_email)
    their_details = harness.connector.grant(theirs)
    assert harness.can_use(orphan, details)
    try:
        assert setup.worker.sweep_orphans() == 1
        assert not harness.can_use(orphan, details)
        assert orphan.grant_id not in {m.grant_id for m in ours.list_managed()}
        assert harness.can_use(theirs, their_details), "the sweep removed another installation's access"
        assert theirs.grant_id in {m.grant_id for m in harness.connector.list_managed()}
    finally:
        harness.connector.revoke(theirs)


_PROBES = {  # what each client runs once connected, and what it prints then
    "postgresql": (["-tAc", "SELECT 42"], "42"),
    "mysql": (["-N", "-e", "SELECT 42"], "42"),
    "redis": (["PING"], "PONG"),
}


def test_the_client_hint_logs_in_with_the_target_s_own_client(
    tmp_path: Path, harness: ConnectorHarness
) -> None:
    """The command line `sluice access show` prints, run with the environment `sluice access
    credentials --env` prints, opens the target's own client as the grantee."""
    kind = type(harness.connector).kind
    setup = Setup(tmp_path, harness)
    grant_id = setup.request_and_approve(minutes=30)
    setup.worker.run_once()
    _, details = setup.what_the_grantee_holds(grant_id)
    connection = connection_of(kind, details)
    command = client_command(connection)
    if kind not in _PROBES:  # no client that logs in: LDAP shows the membership, SSH writes the key first
        expected_start = {"ldap_groups": "ldapsearch ", "ssh": f"sluice access ssh-key {grant_id}"}.get(kind)
        assert (command or "").startswith(expected_start) if expected_start else command is None
        return
    assert connection.kind == kind and not isinstance(connection, OtherConnection)
    assert command is not None and details["password"] not in command
    args, expected = _PROBES[kind]
    done = subprocess.run(
        [*shlex.split(command), *args],
        env={"PATH": os.environ["PATH"], **client_env(connection, details["password"])},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
