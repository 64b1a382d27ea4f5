"""Roles: every role-gated route walked by a token of each role (user, auditor, operator, admin); each
audit event names the token that acted; /metrics behind its own token; a partial scrape without a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from sluice.api.app import create_app
from sluice.domain.roles import Role
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.tables import ApiToken, AuditEvent, Identity
from tests.api.conftest import Api, build_runtime, email
from tests.conftest import Clock
from tests.webhook_receiver import add_webhook

ROLES = ("user", "auditor", "operator", "admin")


@pytest.fixture
def role_tokens(api: Api) -> dict[str, str]:
    """A token of each role, all acting as dave (an engineer: he approves nothing of alice's)."""
    tokens = {}
    add_webhook(api.runtime.factory, "hook", "http://127.0.0.1:9/hook")  # for the webhook routes in GATED
    with transaction(api.runtime.factory) as session:
        for role in ROLES:
            tokens[role] = create_token(
                session, email=email("dave"), role=Role(role), actor="test", now=api.clock()
            )
    return tokens


def _call(api: Api, token: str, method: str, path: str, body: object = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return api.client.request(method, "/api/v1" + path, headers=headers, json=body).status_code


# (method, path, body, the lowest role that may): user < auditor < operator < admin
GATED = [
    ("GET", "/audit", None, "auditor"),
    ("GET", "/reports/access", None, "auditor"),
    ("GET", "/grants", None, "auditor"),
    ("GET", "/requests?scope=all", None, "auditor"),
    (
        "GET",
        "/explain?identity=alice%40example.com&resource=groups%2Foncall&permission=member",
        None,
        "auditor",
    ),
    ("POST", "/integrations/groups/check", None, "operator"),
    ("POST", "/integrations/groups/sync", None, "operator"),
    ("PUT", "/identities/zed%40example.com", {"name": "Zed"}, "admin"),
    ("PUT", "/groups/newgroup", {"members": []}, "admin"),
    ("GET", "/webhooks", None, "admin"),
    ("GET", "/webhooks/hook/deliveries?state=pending", None, "admin"),
    ("POST", "/webhooks/hook/test", None, "admin"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "lowest"), GATED, ids=[f"{m} {p}" for m, p, _, _ in GATED]
)
def test_each_role_reaches_exactly_what_it_may(
    api: Api, role_tokens: dict[str, str], method: str, path: str, body: object, lowest: str
) -> None:
    for rank, role in enumerate(ROLES):
        status = _call(api, role_tokens[role], method, path, body)
        if rank >= ROLES.index(lowest):
            assert status < 400, (role, method, path, status)
        else:
            assert status == 403, (role, method, path, status)


def test_revoking_someone_elses_grant_takes_an_operator(api: Api, role_tokens: dict[str, str]) -> None:
    asked = api.ask("alice")
    assert api.post("bob", f"/requests/{asked['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    grant_id = api.get("alice", "/access").json()["items"][0]["id"]
    for role in ("user", "auditor"):
        assert _call(api, role_tokens[role], "POST", f"/access/{grant_id}/revoke", {"reason": "x"}) in (
            403,
            404,
        )
    assert _call(api, role_tokens["operator"], "POST", f"/access/{grant_id}/revoke", {"reason": "x"}) == 200
    # An auditor reads the request, changes nothing.
    assert _call(api, role_tokens["auditor"], "GET", f"/requests/{asked['id']}") == 200
    assert (
        _call(api, role_tokens["auditor"], "POST", f"/requests/{asked['id']}/cancel", {"reason": "x"}) == 403
    )


def test_no_role_lets_anyone_approve_for_themselves(api: Api) -> None:
    with transaction(api.runtime.factory) as session:
        admin_alice = create_token(
            session, email=email("alice"), role=Role.ADMIN, actor="test", now=api.clock()
        )
    asked = api.ask("alice")
    status = _call(api, admin_alice, "POST", f"/requests/{asked['id']}/approve", {"reason": "mine"})
    assert status == 403


def test_every_audit_event_names_the_token_that_acted(api: Api, role_tokens: dict[str, str]) -> None:
    asked = api.ask("alice")
    assert api.post("bob", f"/requests/{asked['id']}/approve", {"reason": "ok"}).status_code == 200
    api.work()
    operator = role_tokens["operator"]
    assert _call(api, operator, "POST", f"/requests/{asked['id']}/revoke", {"reason": "done"}) == 200
    with transaction(api.runtime.factory) as session:
        token_of = {
            (who, role): token_id
            for who, role, token_id in session.execute(
                select(Identity.email, ApiToken.role, ApiToken.id).join(
                    ApiToken, ApiToken.identity_id == Identity.id
                )
            )
        }
        via = {e.action: e.details.get("via") for e in session.scalars(select(AuditEvent))}
    assert via["request.created"] == f"token:{token_of[(email('alice'), 'user')]}"
    assert via["request.approved"] == f"token:{token_of[(email('bob'), 'user')]}"
    assert via["grant.revoke_requested"] == f"token:{token_of[(email('dave'), 'operator')]}"
    assert via["grant.activated"] is None  # the worker acted: no token
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {role_tokens['auditor']}"}).json()
    assert me["role"] == "auditor" and me["admin"] is False


def test_metrics_can_require_a_token(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_METRICS_TOKEN", "scrape-secret")
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    scraped = api.client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert scraped.status_code == 200 and "sluice_store_up 1.0" in scraped.text


@pytest.fixture
def dead_store_client(tmp_path: Path, clock: Clock) -> Iterator[object]:
    from fastapi.testclient import TestClient

    runtime = build_runtime(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, clock)
    runtime.engine.dispose()
    (tmp_path / "store.db").unlink()
    (tmp_path / "store.db").mkdir()  # a folder where the file was: the store cannot be opened
    with TestClient(create_app(runtime)) as client:
        yield client


def test_a_scrape_without_the_store_still_answers(dead_store_client) -> None:  # type: ignore[no-untyped-def]
    scraped = dead_store_client.get("/metrics")
    assert scraped.status_code == 200
    assert "sluice_store_up 0.0" in scraped.text
    assert "sluice_target_operations_total" in scraped.text or "python_info" in scraped.text
    assert "sluice_queue_depth{" not in scraped.text
