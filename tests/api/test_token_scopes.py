"""Scopes narrow what a token may do, within its owner's role: `read` cannot ask for access, `request`
cannot approve, `admin` needs an operator or admin owner, and a token never hands out a scope it lacks."""

from __future__ import annotations

import httpx

from tests.api.conftest import Api, email, problem


def token(api: Api, who: str, *scopes: str, name: str = "scoped") -> str:
    answer = api.post(who, "/tokens", {"name": name, "scopes": list(scopes)})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["token"])


def call(api: Api, secret: str, method: str, path: str, body: object = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return api.client.request(method, "/api/v1" + path, headers=headers, json=body)


ASK = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "incident 42"}


def test_a_read_token_reads_but_cannot_ask(api: Api) -> None:
    reader = token(api, "alice", "read")
    assert call(api, reader, "GET", "/requests").status_code == 200
    refused = problem(call(api, reader, "POST", "/requests", ASK), 403)
    assert "do not include `request`" in refused["detail"]
    problem(call(api, reader, "POST", "/tokens", {"name": "more", "scopes": ["read"]}), 403)


def test_a_request_token_asks_but_cannot_read_or_approve(api: Api) -> None:
    asker = token(api, "alice", "request")
    asked = call(api, asker, "POST", "/requests", ASK)
    assert asked.status_code == 201, asked.text
    assert "`read`" in problem(call(api, asker, "GET", "/requests"), 403)["detail"]
    lead = token(api, "bob", "read", "request")
    refused = problem(call(api, lead, "POST", f"/requests/{asked.json()['id']}/approve"), 403)
    assert "`approve`" in refused["detail"]
    approver = token(api, "bob", "approve", name="approver")
    approved = call(api, approver, "POST", f"/requests/{asked.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"


def test_admin_needs_the_admin_scope_and_an_admin_owner(api: Api) -> None:
    refused = problem(api.post("alice", "/tokens", {"name": "power", "scopes": ["admin"]}), 403)
    assert "beyond the owner's role user" in refused["detail"]
    without = token(api, "root", "read", "request", name="plain")
    assert call(api, without, "GET", "/audit").status_code == 200  # an admin's token still reads all
    denied = problem(call(api, without, "PUT", f"/identities/{email('zed')}", {"name": "Zed"}), 403)
    assert "`admin` scope" in denied["detail"]
    admin = token(api, "root", "admin", name="admin")
    assert call(api, admin, "PUT", f"/identities/{email('zed')}", {"name": "Zed"}).status_code == 200
    assert call(api, admin, "GET", "/audit").status_code == 200  # admin implies read


def test_a_token_never_gives_away_a_scope_it_lacks(api: Api) -> None:
    asker = token(api, "alice", "request", name="asker")
    refused = problem(call(api, asker, "POST", "/tokens", {"name": "reader", "scopes": ["read"]}), 403)
    assert "lacks scope read" in refused["detail"]
    made = call(api, asker, "POST", "/tokens", {"name": "another", "scopes": ["request"]})
    assert made.status_code == 201
    plain_admin = token(api, "root", "read", "request", name="plain")
    escalate = call(api, plain_admin, "POST", "/tokens", {"name": "x", "scopes": ["admin"]})
    assert problem(escalate, 403)


def test_the_needed_scope_is_in_the_openapi_schema(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert paths["/api/v1/requests/{request_id}/approve"]["post"]["x-sluice-scope"] == "approve"
    assert paths["/api/v1/requests/{request_id}/reject"]["post"]["x-sluice-scope"] == "approve"
