"""The aws connector with Sluice's policies, against the AWS emulator: flows on an OU minus one
account, on a tag, and on any account; request, approve, the assignment in Identity Center, expiry;
and an account moved out of an OU leaving that OU's coverage (and its pending requests) at the next
sync."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sluice.services.config.apply import apply_config
from sluice.services.config.file import parse_config
from sluice.services.grants.secrets import SecretBox
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import AccessRequest, Base
from sluice.worker.loop import Worker
from tests.aws_emulator import AwsOrg
from tests.conftest import Clock

pytestmark = pytest.mark.e2e

CONFIG = """\
identities:
  - {{email: ada@example.com, name: Ada}}
  - {{email: alice@example.com, name: Alice}}
  - {{email: bob@example.com, name: Bob}}
  - {{email: carol@example.com, name: Carol}}
integrations:
  - name: aws-org
    kind: aws
    config: {config}
flows:
  - name: prod-but-not-payments
    requesters: [{{user: ada@example.com}}]
    targets:
      - integration: aws-org
        type: permission_set
        select:
          under: [aws-org/Root/prod]
          exclude: {{under: [aws-org/Root/prod/payments]}}
        permissions: [assigned]
    approvers: [{{user: carol@example.com}}]
    max_duration: 2h
  - name: pii-accounts
    requesters: [{{user: alice@example.com}}]
    targets:
      - integration: aws-org
        type: permission_set
        select: {{tags: ["pii=true"], names: [ReadOnly]}}
        permissions: [assigned]
    approvers: [{{user: carol@example.com}}]
    max_duration: 1h
  - name: any-account
    requesters: [{{user: bob@example.com}}]
    targets:
      - {{integration: aws-org, type: permission_set, permissions: [assigned]}}
    approvers: [{{user: carol@example.com}}]
    max_duration: 1h
"""


class Sluice:
    def __init__(self, tmp_path: Path, org: AwsOrg) -> None:
        self.org = org
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        self.engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        Base.metadata.create_all(self.engine)
        self.factory: sessionmaker[Session] = make_session_factory(self.engine)
        config = org.config(ledger_path=f"/sluice-e2e-{secrets.token_hex(4)}")
        with transaction(self.factory) as session:
            doc = parse_config(CONFIG.format(config=json.dumps(config)), "sluice.yaml")
            apply_config(session, doc, actor="test", now=self.clock())
        self.hub = ConnectorHub(self.factory)
        box = SecretBox.load(tmp_path, None)
        self.worker = Worker(self.factory, hub=self.hub, box=box, clock=self.clock, worker_id="aws-e2e")
        self.sync()

    def sync(self) -> None:
        sync_integration(self.factory, self.hub, "aws-org", clock=self.clock)

    def requestable_paths(self, email: str) -> set[str]:
        with transaction(self.factory) as session:
            who = identity_by_email(session, email)
            assert who is not None
            page = requestable(
                session, identity=who, where=RequestableFilter(), limit=500, offset=0, now=self.clock()
            )
            return {item.resource.path for item in page.items}

    def ask(self, email: str, path: str, *, approve: bool = True) -> tuple[str, str]:
        with transaction(self.factory) as session:
            requester, approver = (
                identity_by_email(session, email),
                identity_by_email(session, "carol@example.com"),
            )
            assert requester is not None and approver is not None
            request = submit_request(
                session,
                hub=self.hub,
                requester=requester,
                units=[UnitAsked(path, "assigned")],
                duration=timedelta(minutes=30),
                reason="incident 7",
                now=self.clock(),
            )
            if approve:
                approve_request(
                    session, request_id=request.id, approver=approver, reason="ok", now=self.clock()
                )
            return request.id, request.grants[0].id if request.grants else ""

    def request_state(self, request_id: str) -> str:
        with transaction(self.factory) as session:
            found = session.get(AccessRequest, request_id)
            assert found is not None
            return str(found.status)


@pytest.fixture
def sluice(tmp_path: Path, aws_org: AwsOrg) -> Iterator[Sluice]:
    made = Sluice(tmp_path, aws_org)
    yield made
    made.engine.dispose()


def test_flows_on_an_ou_minus_an_account_on_a_tag_and_on_any_account(sluice: Sluice) -> None:
    ada = sluice.requestable_paths("ada@example.com")
    assert "aws-org/Root/prod/eu/web/ReadOnly" in ada and "aws-org/Root/prod/eu/web/Admin" in ada
    assert not any(p.startswith("aws-org/Root/prod/payments/") for p in ada)
    assert not any(p.startswith("aws-org/Root/staging/") for p in ada)

    alice = sluice.requestable_paths("alice@example.com")
    assert {"aws-org/Root/prod/payments/ReadOnly", "aws-org/Root/staging/analytics/ReadOnly"} <= alice
    assert not any("/web/" in p or p.endswith("/Admin") for p in alice)

    bob = sluice.requestable_paths("bob@example.com")
    for account in ("prod/payments", "prod/eu/web", "staging/analytics"):
        assert f"aws-org/Root/{account}/Admin" in bob


def test_an_approved_request_is_an_identity_center_assignment_until_it_ends(sluice: Sluice) -> None:
    sluice.ask("ada@example.com", "aws-org/Root/prod/eu/web/ReadOnly")
    assert not sluice.org.assigned("web", "ReadOnly", "ada@example.com")
    sluice.worker.run_once()
    assert sluice.org.assigned("web", "ReadOnly", "ada@example.com")
    sluice.clock.advance(minutes=31)
    sluice.worker.run_once()
    assert not sluice.org.assigned("web", "ReadOnly", "ada@example.com"), "the assignment outlived its grant"


def test_an_account_moved_out_of_the_ou_leaves_its_coverage_at_the_next_sync(sluice: Sluice) -> None:
    org = sluice.org
    account = org.add_account(f"moving-{secrets.token_hex(3)}", "prod")
    name = next(n for n, i in org.accounts.items() if i == account)
    sluice.sync()
    path = f"aws-org/Root/prod/{name}/ReadOnly"
    assert path in sluice.requestable_paths("ada@example.com"), "a new account in prod is covered at once"
    waiting, _ = sluice.ask("ada@example.com", path, approve=False)

    org.move(account, "staging")
    sluice.sync()
    assert path not in sluice.requestable_paths("ada@example.com")
    assert f"aws-org/Root/staging/{name}/ReadOnly" not in sluice.requestable_paths("ada@example.com")
    assert sluice.request_state(waiting) != "pending", "a request on an account that left the OU still waits"


def test_a_closed_account_is_no_longer_offered(sluice: Sluice) -> None:
    org = sluice.org
    account = org.add_account(f"closing-{secrets.token_hex(3)}", "prod")
    name = next(n for n, i in org.accounts.items() if i == account)
    sluice.sync()
    assert f"aws-org/Root/prod/{name}/ReadOnly" in sluice.requestable_paths("ada@example.com")
    org.client("organizations").close_account(AccountId=account)
    sluice.sync()
    assert f"aws-org/Root/prod/{name}/ReadOnly" not in sluice.requestable_paths("ada@example.com")
