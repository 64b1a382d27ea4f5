"""An integration's life after its first grant: disabled in the config (no new requests, live grants
run out), the emergency stop (every live grant revoked, audited), and retirement, which on a real
PostgreSQL target leaves no role, membership or privilege Sluice made, keeps the history, and lets
the config drop the integration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from sluice.domain.errors import Conflict
from sluice.domain.flows import FlowSpec
from sluice.services.config.apply import apply_config, plan_config
from sluice.services.config.document import ConfigDocument
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, AuditEvent, Integration
from sluice.store.types import new_id
from tests.api.conftest import Api, problem
from tests.connectors.conformance.mysql import NAME as MYSQL_NAME
from tests.connectors.conformance.mysql import MySQLHarness, mysql_harness
from tests.connectors.conformance.pg import NAME, PostgresHarness, postgres_harness


def _grant_state(api: Api, grant_id: str) -> str:
    response = api.get("root", "/grants", include_ended="true", limit=500)
    return next(g["state"] for g in response.json()["items"] if g["id"] == grant_id)


def _actions(api: Api, subject: str) -> list[str]:
    with transaction(api.runtime.factory) as session:
        return [
            e.action for e in session.query(AuditEvent).filter_by(subject_id=subject).order_by(AuditEvent.seq)
        ]


def _approved(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("alice", "/requests", {"reason": "incident 42", "duration": "1h", **body})
    assert response.status_code == 201, response.text
    request = response.json()
    assert api.post("bob", f"/requests/{request['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    return request


def _offered(api: Api, who: str) -> list[str]:
    response = api.get(who, "/requestable", integration="groups")
    assert response.status_code == 200, response.text
    return [item["path"] for item in response.json()["items"]]


def _set_disabled(api: Api, name: str, disabled: bool) -> None:
    with transaction(api.runtime.factory) as session:
        session.query(Integration).filter_by(name=name).one().disabled = disabled


def test_a_disabled_integration_takes_no_request_and_lets_live_grants_run(api: Api) -> None:
    held = api.ask(group="oncall")
    api.post("bob", f"/requests/{held['id']}/approve", {"reason": "ok"})
    api.work()
    assert "groups/dba" in _offered(api, "dave")
    _set_disabled(api, "groups", True)
    assert _offered(api, "dave") == []  # what a submit would refuse is not offered
    body = {"resources": ["groups/dba"], "permission": "member", "duration": "1h", "reason": "x"}
    refused = problem(api.post("dave", "/requests", body), 422)
    assert refused["type"].endswith("integration-closed")
    assert "disabled in the config" in refused["detail"]
    assert _grant_state(api, held["grants"][0]["id"]) == "active"  # runs out as planned
    status = api.get("alice", "/integrations/groups/status").json()
    assert (status["disabled"], status["lifecycle"]) == (True, "active")
    _set_disabled(api, "groups", False)
    assert "groups/dba" in _offered(api, "dave")
    assert api.post("dave", "/requests", body).status_code == 201


def test_the_emergency_stop_revokes_every_live_grant_and_is_audited(api: Api) -> None:
    first, second = api.ask(group="oncall"), api.ask("dave", group="dba")
    for request in (first, second):
        api.post("bob", f"/requests/{request['id']}/approve", {"reason": "ok"})
    api.work()
    waiting = api.ask("alice", group="dba")  # nobody approved it yet
    stop = {"integration": "groups", "reason": "credentials leaked"}
    problem(api.post("alice", "/grants/revoke", stop), 403)
    problem(api.post("root", "/grants/revoke", {"integration": "nope", "reason": "x"}), 404)
    problem(api.post("root", "/grants/revoke", {"integration": "groups", "reason": ""}), 422)
    response = api.post("root", "/grants/revoke", stop)
    assert response.status_code == 200, response.text
    grant_ids = {first["grants"][0]["id"], second["grants"][0]["id"]}
    assert set(response.json()["revoked"]) == grant_ids | {waiting["grants"][0]["id"]}
    api.work()
    assert {_grant_state(api, g) for g in grant_ids} == {"revoked"}
    assert api.get("alice", f"/requests/{waiting['id']}").json()["status"] == "cancelled"
    problem(api.post("bob", f"/requests/{waiting['id']}/approve", {"reason": "late"}), 409)
    assert "integration.grants_revoked" in _actions(api, "groups")
    again = api.post("root", "/grants/revoke", stop)
    assert again.json()["revoked"] == []


@pytest.fixture
def pg_target(postgres_admin_url: str) -> Iterator[PostgresHarness]:
    yield from postgres_harness(postgres_admin_url)


def _add_integration(api: Api, name: str, kind: str, config: dict[str, Any], targets: dict[str, str]) -> None:
    """An integration with one flow per resource type in `targets` (type -> permission), synced."""
    now = api.clock()
    with transaction(api.runtime.factory) as session:
        session.add(
            Integration(id=new_id("int"), name=name, kind=kind, config=config, created_at=now, updated_at=now)
        )
        for resource_type, permission in targets.items():
            spec = FlowSpec.model_validate(
                {
                    "name": f"{name}-{resource_type}",
                    "targets": [{"integration": name, "type": resource_type, "permissions": [permission]}],
                    "requesters": [{"group": "engineers"}],
                    "approvers": [{"group": "leads"}],
                    "max_duration": "4h",
                }
            )
            session.add(
                AccessFlow(
                    id=new_id("flw"),
                    name=spec.name,
                    spec=spec.model_dump(mode="json"),
                    created_at=now,
                    updated_at=now,
                )
            )
    sync_integration(api.runtime.factory, api.runtime.hub, name, clock=api.clock)


def _retire(api: Api, name: str) -> None:
    response = api.post("root", f"/integrations/{name}/retire", {"reason": "moved elsewhere"})
    assert response.status_code == 202, response.text
    api.work()  # revokes the live grants, then finishes the retirement
    api.work()
    status = api.get("root", f"/integrations/{name}/status").json()
    assert (status["lifecycle"], status["retire_error"]) == ("retired", None), status


def _sluice_made(harness: PostgresHarness) -> dict[str, list[Any]]:
    """Every trace of the harness's role prefix in the cluster and in its database."""
    prefix = harness.config.role_prefix
    admin = dict(harness.admin)
    found: dict[str, list[Any]] = {}
    with psycopg.connect(**admin, autocommit=True) as conn:
        found["roles"] = conn.execute(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [prefix]
        ).fetchall()
        found["memberships"] = conn.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " WHERE starts_with(r.rolname, %s)",
            [prefix],
        ).fetchall()
        found["database_acl"] = conn.execute(
            "SELECT datname FROM pg_database WHERE datacl::text LIKE %s", [f"%{prefix}%"]
        ).fetchall()
    with psycopg.connect(**{**admin, "dbname": harness.database}, autocommit=True) as conn:
        like = [f"%{prefix}%"]
        found["table_acl"] = conn.execute(
            "SELECT relname FROM pg_class WHERE relacl::text LIKE %s", like
        ).fetchall()
        found["schema_acl"] = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspacl::text LIKE %s", like
        ).fetchall()
        found["default_acl"] = conn.execute(
            "SELECT defaclobjtype FROM pg_default_acl WHERE defaclacl::text LIKE %s", like
        ).fetchall()
    return found


def test_a_retired_postgresql_integration_leaves_nothing_in_the_target(
    api: Api, pg_target: PostgresHarness
) -> None:
    config = pg_target.config.model_dump(mode="json", exclude_none=True)
    _add_integration(api, NAME, "postgresql", config, {"table": "read", "schema": "write"})
    db = pg_target.sample.path.split("/")[1]
    ended = _approved(api, {"resources": [pg_target.sample.path], "permission": "read"})
    revoke = api.post("alice", f"/requests/{ended['id']}/revoke", {"reason": "done"})
    assert revoke.status_code == 200, revoke.text
    api.work()  # history: an ended grant
    _approved(api, {"resources": [pg_target.sample.path], "permission": "read"})
    live = _approved(api, {"resources": [f"{NAME}/{db}/app"], "permission": "write"})
    assert _grant_state(api, live["grants"][0]["id"]) == "active"
    made = _sluice_made(pg_target)
    assert made["roles"] and made["table_acl"] and made["default_acl"], made

    with pytest.raises(Conflict, match="live grant"):
        _plan_without(api, NAME)
    problem(api.post("alice", f"/integrations/{NAME}/retire", {"reason": "moved"}), 403)
    response = api.post("root", f"/integrations/{NAME}/retire", {"reason": "database moved to prod-pg-2"})
    assert response.status_code == 202, response.text
    assert response.json()["lifecycle"] == "retiring"
    refused = api.post(
        "dave", "/requests", {"resources": [pg_target.sample.path], "permission": "read", "duration": "1h"}
    )
    assert problem(refused, 422)["type"].endswith("integration-closed")

    api.work()  # revokes the live grants, then finishes the retirement
    api.work()
    status = api.get("root", f"/integrations/{NAME}/status").json()
    assert (status["lifecycle"], status["retire_error"]) == ("retired", None), status
    assert all(not rows for rows in _sluice_made(pg_target).values()), _sluice_made(pg_target)
    assert _grant_state(api, live["grants"][0]["id"]) == "revoked"
    assert api.get("alice", f"/requests/{ended['id']}").status_code == 200  # the history stays
    assert {"integration.retiring", "integration.retired"} <= set(_actions(api, NAME))
    problem(api.post("root", f"/integrations/{NAME}/retire", {"reason": "again"}), 409)

    assert ("integration", NAME) not in _plan_without(api, NAME).removed  # kept, as history, silently
    with transaction(api.runtime.factory) as session:
        apply_config(session, _doc_without(api, NAME), actor="test", now=api.clock())
        assert session.query(Integration).filter_by(name=NAME).one().lifecycle == "retired"


def _doc_without(api: Api, name: str) -> ConfigDocument:
    """A config document holding every integration of the store but `name`."""
    with transaction(api.runtime.factory) as session:
        rows = session.query(Integration).filter(Integration.name != name).all()
        specs = [{"name": r.name, "kind": r.kind, "config": r.config} for r in rows]
        for row in session.query(Integration).all():
            row.source = "config"
    return ConfigDocument.model_validate({"integrations": specs})


def _plan_without(api: Api, name: str) -> Any:
    doc = _doc_without(api, name)
    with transaction(api.runtime.factory) as session:
        return plan_config(session, doc)


@pytest.fixture
def mysql_target(mysql_server: dict[str, Any]) -> Iterator[MySQLHarness]:
    yield from mysql_harness(mysql_server)


def test_a_retired_mariadb_integration_leaves_no_account_or_privilege(
    api: Api, mysql_target: MySQLHarness
) -> None:
    name = MYSQL_NAME
    config = mysql_target.config.model_dump(mode="json", exclude_none=True)
    _add_integration(api, name, "mysql", config, {"table": "read"})
    ended = _approved(api, {"resources": [mysql_target.sample.path], "permission": "read"})
    api.post("alice", f"/requests/{ended['id']}/revoke", {"reason": "done"})
    api.work()
    live = _approved(api, {"resources": [mysql_target.sample.path], "permission": "read"})
    assert _grant_state(api, live["grants"][0]["id"]) == "active"
    prefix = mysql_target.config.user_prefix
    queries = {
        "accounts": "SELECT user FROM mysql.user WHERE user LIKE %s",
        "database privileges": "SELECT user FROM mysql.db WHERE user LIKE %s",
        "table privileges": "SELECT user FROM mysql.tables_priv WHERE user LIKE %s",
    }

    def traces() -> dict[str, list[Any]]:
        with mysql_target.admin() as conn, conn.cursor() as cur:
            found = {}
            for what, query in queries.items():
                cur.execute(query, [prefix.replace("_", "\\_") + "%"])
                found[what] = list(cur.fetchall())
            return found

    assert traces()["accounts"] and traces()["table privileges"]
    _retire(api, name)
    assert all(not rows for rows in traces().values()), traces()
    assert _grant_state(api, live["grants"][0]["id"]) == "revoked"


def test_disabled_comes_from_the_config(api: Api) -> None:
    with transaction(api.runtime.factory) as session:
        row = session.query(Integration).filter_by(name="groups").one()
        spec = {"name": row.name, "kind": row.kind, "config": row.config, "disabled": True}
    doc = ConfigDocument.model_validate({"integrations": [spec]})
    with transaction(api.runtime.factory) as session:
        plan = plan_config(session, doc)
    assert ("integration", "groups") in plan.changed
    assert "disabled" in plan.notes[("integration", "groups")]
