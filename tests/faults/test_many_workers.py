"""Quality: `sluice server` and `sluice worker` scale out on one PostgreSQL store.

Three servers and three workers run as processes on this machine (the layout of docs/deploy.md).
Requests for two PostgreSQL integrations arrive through all three servers; every grant becomes
usable, each worker takes part, both integrations are served, and when a worker is SIGKILLed the
others take over its claims once their lease lapses."""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from sluice.domain.states import Actual, Desired
from sluice.events.chain import verify_chain
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Grant, Resource
from tests.faults.harness import TABLE, Setup, admin_params, login_roles
from tests.faults.processes import Fleet, sluice_env

pytestmark = pytest.mark.e2e

PEOPLE = 24


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(databases: dict[str, str], prefixes: dict[str, str], admin_url: str) -> str:
    admin = admin_params(admin_url)
    people = "\n".join(f"  - {{email: p{i}@example.com, name: P{i}, groups: [eng]}}" for i in range(PEOPLE))
    integrations = "\n".join(
        f"""  - name: {name}
    kind: postgresql
    sync_interval: 1h
    config:
      host: {admin.get("host", "127.0.0.1")}
      port: {admin.get("port", 5432)}
      user: {admin.get("user", "postgres")}
      databases: [{db}]
      role_prefix: {prefixes[name]}"""
        for name, db in databases.items()
    )
    targets = ", ".join(f"{{integration: {n}, type: table, permissions: [read]}}" for n in databases)
    return f"""identities:
{people}
integrations:
{integrations}
flows:
  - name: self-serve-read
    requesters: [{{group: eng}}]
    targets: [{targets}]
    max_duration: 1h
"""


@pytest.fixture
def fleet(setup: Setup, tmp_path: Path) -> Iterator[Fleet]:
    env = sluice_env(setup.store_url, setup.home, setup.secret_key, SLUICE_CLAIM_LEASE_SECONDS="3")
    made = Fleet(env, tmp_path)
    try:
        yield made
    finally:
        made.stop_all()


def _until(what: str, check: Callable[[], object], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def test_three_servers_and_three_workers_share_the_load(
    setup: Setup, fleet: Fleet, target_database: Callable[..., str], postgres_admin_url: str, tmp_path: Path
) -> None:
    databases = {"pg-a": target_database(), "pg-b": target_database()}
    prefixes = {name: f"m{secrets.token_hex(3)}_" for name in databases}
    setup.prefixes.update(prefixes)  # so the fixture drops these roles at the end
    setup.targets.update({name: (postgres_admin_url, db) for name, db in databases.items()})
    config = tmp_path / "sluice.yaml"
    config.write_text(_config(databases, prefixes, postgres_admin_url))
    applied = fleet.start("apply", "apply", "-f", str(config))
    assert applied.process.wait(timeout=120) == 0, applied.log_text()

    ports = [_free_port() for _ in range(3)]
    servers = [fleet.start(f"server-{i}", "server", "--port", str(port)) for i, port in enumerate(ports)]
    workers = [fleet.start(f"worker-{i}", "worker") for i in range(3)]
    for proc in servers:
        fleet.wait_for(proc, "Application startup complete", timeout=90)
    for proc in workers:
        fleet.wait_for(proc, "worker started", timeout=90)
    for port in ports:
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

    def discovered() -> bool:
        with transaction(setup.factory) as session:
            paths = set(session.scalars(select(Resource.path).where(Resource.type == "table")))
        return all(f"{name}/{db}/public/{TABLE}" in paths for name, db in databases.items())

    _until("the inventory of both integrations", discovered, 60)
    tokens = {}
    with transaction(setup.factory) as session:
        for i in range(PEOPLE):
            email = f"p{i}@example.com"
            tokens[email] = create_token(
                session, email=email, admin=False, actor="test", now=datetime.now(UTC)
            )

    def ask(i: int) -> None:
        name = list(databases)[i % 2]
        port = ports[i % 3]
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/requests",
            json={
                "resources": [f"{name}/{databases[name]}/public/{TABLE}"],
                "permission": "read",
                "duration": "1h",
                "reason": "scale-out test",
            },
            headers={"Authorization": f"Bearer {tokens[f'p{i}@example.com']}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text

    def all_active(count: int) -> bool:
        with transaction(setup.factory) as session:
            rows = session.execute(select(Grant.desired, Grant.actual)).all()
        return len(rows) == count and all((d, a) == (Desired.ACTIVE, Actual.ACTIVE) for d, a in rows)

    for i in range(PEOPLE // 2):
        ask(i)
    _until("the first half of the grants", lambda: all_active(PEOPLE // 2), 60)

    workers[0].kill()  # dies holding whatever it held; the others take over after the lease
    for i in range(PEOPLE // 2, PEOPLE):
        ask(i)
    _until("every grant, after a worker died", lambda: all_active(PEOPLE), 60)

    done_by: Counter[str] = Counter()
    for proc in workers:
        done_by[proc.name] = len(re.findall(r"grant done for grant", proc.log_text()))
    assert sum(done_by.values()) >= PEOPLE
    assert all(count > 0 for count in done_by.values()), done_by  # every worker took part
    for name, prefix in prefixes.items():
        assert len(login_roles(postgres_admin_url, prefix)) == PEOPLE // 2, name
    scraped = httpx.get(f"http://127.0.0.1:{ports[1]}/metrics", timeout=10).text
    assert 'sluice_grants{integration="pg-a",state="active"} 12.0' in scraped
    assert 'sluice_queue_depth{integration="pg-b"} 0.0' in scraped
    # Three servers and three workers wrote the audit log at once: it is still one unbroken chain.
    with transaction(setup.factory) as session:
        chain = verify_chain(session)
        created = session.scalar(select(func.count()).where(AuditEvent.action == "request.created"))
        written_by = set(session.scalars(select(AuditEvent.actor).where(AuditEvent.seq.is_not(None))))
    assert chain.ok, chain.problem
    assert created == PEOPLE and chain.checked >= 3 * PEOPLE
    assert "sluice" in written_by and len(written_by) > PEOPLE  # the workers and every person
