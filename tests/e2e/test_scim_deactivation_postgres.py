"""At the target: a person provisioned by SCIM holds a real PostgreSQL login through an approved
request; the identity provider deactivates them with Entra's PATCH, and the running `sluice worker`
drops the login within seconds, the audit saying which source changed what."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg import sql

from tests.e2e.test_server_worker_postgres import SLUICE, _free_port, _run, _until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REVOKED_WITHIN = 10.0
PREFIX = f"sc{secrets.token_hex(3)}_"


@pytest.fixture
def target_db(postgres_admin_url: str) -> Iterator[str]:
    name = f"sluice_scim_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(postgres_admin_url.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE public.ledger (id int)")
    yield name
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for (role,) in conn.execute("SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [PREFIX]):
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def running(
    tmp_path: Path, make_pg_database: Callable[[str], str], target_db: str
) -> Iterator[dict[str, str]]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env = dict(base, SLUICE_HOME=str(tmp_path / "home"), SLUICE_DATABASE_URL=make_pg_database("sluice_scim"))
    env["SLUICE_SECRET_KEY"] = Fernet.generate_key().decode()  # required on PostgreSQL, the same for both
    config = tmp_path / "sluice.yaml"
    config.write_text(
        f"""\
identities:
  - {{email: carol@example.com, name: Carol, groups: [managers]}}
integrations:
  - name: pg
    kind: postgresql
    config: {{role_prefix: {PREFIX}, databases: [{target_db}]}}
flows:
  - name: payments-read
    requesters: [{{attribute: department, is: payments}}]
    targets: [{{integration: pg, type: table, permissions: [read]}}]
    approvers: [{{group: managers}}]
    max_duration: 4h
"""
    )
    _run(env, "db", "upgrade")
    # the flow tests `department` before anyone carries it: known once a SCIM source exists
    env["TEST_SCIM_TOKEN"] = _run(env, "scim", "token", "create", "--source", "entra").strip()
    _run(env, "apply", "-f", str(config))
    env["SLUICE_URL"] = f"http://127.0.0.1:{_free_port()}"
    port = env["SLUICE_URL"].rsplit(":", 1)[1]
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("server", "worker")}
    started: list[subprocess.Popen[bytes]] = []
    try:
        for args, log in ((["server", "--port", port], logs["server"]), (["worker"], logs["worker"])):
            started.append(subprocess.Popen([SLUICE, *args], env=env, stdout=log, stderr=log))

        def healthy() -> bool:
            for process in started:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                return httpx.get(f"{env['SLUICE_URL']}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _until("the server", healthy, 60)
        yield env
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for handle in logs.values():
            handle.close()


def _login_exists(admin_url: str, principal: str) -> bool:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [principal]).fetchone()
        return bool(row and row[0])


def test_scim_deactivation_drops_the_postgresql_login_within_seconds(
    running: dict[str, str], postgres_admin_url: str, target_db: str
) -> None:
    env = running
    scim_token = env["TEST_SCIM_TOKEN"]
    scim = httpx.Client(
        base_url=f"{env['SLUICE_URL']}/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}", "Content-Type": "application/scim+json"},
        timeout=10,
    )
    created = scim.post(
        "/Users",
        json={
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ],
            "userName": "pia@example.com",
            "active": True,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "payments"},
        },
    )
    assert created.status_code == 201, created.text
    pia = _run(env, "token", "create", "--email", "pia@example.com").strip()
    carol = _run(env, "token", "create", "--email", "carol@example.com").strip()
    table = f"pg/{target_db}/public/ledger"

    def synced() -> bool:
        listed = json.loads(_run(env, "inventory", "list", "--json", token=pia))
        return any(r["path"] == table for r in listed["items"])

    _until("the worker's inventory sync", synced, 60)
    request_id = _run(
        env, "request", "create", "-r", table, "-p", "read", "-d", "1h", "--reason", "month end", token=pia
    ).strip()
    _run(env, "request", "approve", request_id, token=carol)

    def active_grant() -> dict[str, Any] | None:
        items = json.loads(_run(env, "access", "list", "--json", token=pia))
        return next((i for i in items if i["request_id"] == request_id and i["state"] == "active"), None)

    grant = _until("the grant to become active", active_grant, 60)
    principal = grant["principal"]
    assert _login_exists(postgres_admin_url, principal)

    deactivate = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    answer = scim.patch(f"/Users/{created.json()['id']}", json=deactivate)
    assert answer.status_code == 200, answer.text
    patched_at = time.monotonic()
    _until("the login to be dropped", lambda: not _login_exists(postgres_admin_url, principal), 30)
    assert time.monotonic() - patched_at <= REVOKED_WITHIN

    with psycopg.connect(env["SLUICE_DATABASE_URL"], autocommit=True) as conn:
        events = conn.execute(
            "SELECT actor, action, subject_id, reason FROM audit_events ORDER BY id"
        ).fetchall()
    assert ("scim:entra", "admin.changed", "pia@example.com", None) in events
    ended = [e for e in events if e[1] == "grant.no_longer_eligible"]
    assert ended and ended[0][3] == "pia@example.com is no longer active"
