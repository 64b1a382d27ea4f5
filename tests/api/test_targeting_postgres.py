"""Dynamic targeting against a real PostgreSQL target: a table created and tagged after the flow
exists becomes requestable at the next sync (and is granted for real); re-tagging it away makes it
unrequestable; an excluded table never is; a parent selector covers a schema created later."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from sluice.services.targeting.inventory import sync_integration
from tests.api.conftest import Api, problem
from tests.api.targeting_fixtures import targeting_api
from tests.conftest import Clock

PREFIX = f"tg{secrets.token_hex(3)}_"


def _admin(params: dict[str, Any], dbname: str | None = None) -> psycopg.Connection[Any]:
    return psycopg.connect(
        **{**params, **({"dbname": dbname} if dbname else {})}, autocommit=True, connect_timeout=5
    )


@pytest.fixture
def target(postgres_admin_url: str) -> Iterator[tuple[dict[str, Any], str]]:
    found = conninfo_to_dict(postgres_admin_url)
    params = {k: found[k] for k in ("host", "port", "user", "dbname", "password") if found.get(k)}
    name = f"sluice_tg_{secrets.token_hex(4)}"
    with _admin(params) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with _admin(params, name) as conn:
            conn.execute(
                """
                CREATE SCHEMA shop;
                CREATE TABLE shop.orders (id int);
                COMMENT ON TABLE shop.orders IS 'Orders.
                sluice: pii=true owner=alice@example.com';
                CREATE TABLE shop.secrets (id int);
                COMMENT ON TABLE shop.secrets IS 'sluice: pii=true';
                """
            )
        yield params, name
    finally:
        with _admin(params) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            for (role,) in conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", [PREFIX]
            ):
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def api(tmp_path: Path, clock: Clock, target: tuple[dict[str, Any], str]) -> Iterator[Api]:
    params, db = target
    config = {
        "host": params.get("host", "127.0.0.1"),
        "port": int(params.get("port", 5432)),
        "user": params.get("user", "postgres"),
        "databases": [db],
        "role_prefix": PREFIX,
    }
    flows = [
        {
            "name": "pii-read",
            "requesters": [{"group": "engineers"}],
            "targets": [
                {
                    "integration": "pg",
                    "type": "table",
                    "select": {
                        "under": [f"pg/{db}"],
                        "tags": ["pii=true"],
                        "exclude": {"names": ["secrets"]},
                    },
                    "permissions": ["read"],
                }
            ],
            "approvers": [{"group": "leads"}],
            "max_duration": "2h",
        },
        {
            "name": "schemas",
            "requesters": [{"group": "engineers"}],
            "targets": [
                {
                    "integration": "pg",
                    "type": "schema",
                    "select": {"under": [f"pg/{db}"]},
                    "permissions": ["read"],
                }
            ],
            "approvers": [{"group": "leads"}],
        },
    ]
    yield from targeting_api(tmp_path, clock, pg_config=config, flows=flows)


def _sync(api: Api) -> None:
    sync_integration(api.runtime.factory, api.runtime.hub, "pg", clock=api.runtime.clock)


def _paths(api: Api, **params: Any) -> list[str]:
    response = api.get("alice", "/requestable", integration="pg", **params)
    assert response.status_code == 200, response.text
    return [i["path"] for i in response.json()["items"]]


def test_dynamic_targeting_on_a_real_server(api: Api, target: tuple[dict[str, Any], str]) -> None:
    params, db = target
    _sync(api)
    assert _paths(api, type="table") == [f"pg/{db}/shop/orders"]
    assert _paths(api, type="schema") == [f"pg/{db}/public", f"pg/{db}/shop"]

    # A table created and tagged after the flow exists: requestable after the next sync.
    with _admin(params, db) as conn:
        conn.execute("CREATE TABLE shop.cards (id int); COMMENT ON TABLE shop.cards IS 'sluice: pii=true'")
        conn.execute("CREATE SCHEMA billing")  # a schema created later, under the parent selector
    assert f"pg/{db}/shop/cards" not in _paths(api)
    _sync(api)
    assert _paths(api, type="table") == [f"pg/{db}/shop/cards", f"pg/{db}/shop/orders"]
    assert _paths(api, type="schema") == [f"pg/{db}/billing", f"pg/{db}/public", f"pg/{db}/shop"]

    created = api.post(
        "alice",
        "/requests",
        {
            "resources": [f"pg/{db}/shop/cards"],
            "permission": "read",
            "duration": "1h",
            "reason": "fraud case",
        },
    )
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert api.post("bob", f"/requests/{request_id}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    assert api.get("alice", f"/requests/{request_id}").json()["state"] == "active"
    assert api.post("alice", f"/requests/{request_id}/revoke", {"reason": "done"}).status_code == 200
    api.work()

    # Re-tagging it away makes it unrequestable, and explain says why.
    with _admin(params, db) as conn:
        conn.execute("COMMENT ON TABLE shop.cards IS 'sluice: pii=false'")
    _sync(api)
    assert _paths(api, type="table") == [f"pg/{db}/shop/orders"]
    explained = api.get("alice", "/explain", resource=f"pg/{db}/shop/cards", permission="read").json()
    assert explained["allowed"] is False
    assert 'tag pii is "false"' in {f["flow"]: f["reason"] for f in explained["flows"]}["pii-read"]

    # The excluded table is never requestable, whatever its tags.
    secrets_path = f"pg/{db}/shop/secrets"
    assert secrets_path not in _paths(api)
    refused = api.post(
        "alice",
        "/requests",
        {"resources": [secrets_path], "permission": "read", "duration": "1h", "reason": "x"},
    )
    assert "excluded by exclude.names" in problem(refused, 403)["reasons"]
