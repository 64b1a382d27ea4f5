"""The core loop through the API: ask, approve, the worker grants, use, revoke, gone."""

from __future__ import annotations

import pytest

from sluice.connectors.builtin_groups import BuiltinGroupsConnector
from sluice.domain.errors import TargetError
from tests.api.conftest import Api, email, problem


def test_health_needs_no_token(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_me(api: Api) -> None:
    body = api.get("alice", "/me").json()
    assert body == {
        "email": email("alice"),
        "name": "Alice",
        "admin": False,
        "role": "user",
        "groups": ["engineers"],
        "signed_in_with": "token",
        "expires_at": None,
        "scopes": ["admin", "approve", "read", "request"],  # a store-side bootstrap token has every scope
    }
    assert api.get("root", "/me").json()["admin"] is True
    assert api.get("root", "/me").json()["role"] == "admin"


def test_request_approve_use_revoke(any_store_api: Api) -> None:
    api = any_store_api
    asked = api.ask("alice", duration="2h")
    assert asked["status"] == "pending"
    assert asked["state"] == "pending"
    assert asked["duration"] == "2h"
    assert asked["duration_seconds"] == 7200
    assert asked["approvers"] == [email("bob"), email("carol")]
    [grant] = asked["grants"]
    assert grant["resource"] == "groups/oncall"
    assert grant["state"] == "pending"
    assert "credentials" not in grant

    # Bob sees it waiting for him; Alice sees it as hers.
    waiting = api.get("bob", "/requests", scope="to_approve").json()
    assert [r["id"] for r in waiting["items"]] == [asked["id"]]
    assert waiting["total"] == 1
    assert api.get("alice", "/requests", scope="to_approve").json()["items"] == []
    assert [r["id"] for r in api.get("alice", "/requests").json()["items"]] == [asked["id"]]

    approved = api.post("bob", f"/requests/{asked['id']}/approve", {"reason": "go ahead"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["status"] == "approved"
    assert body["state"] == "granting"
    assert body["decided_by"] == email("bob")
    assert body["approvers"] == []
    assert [(a["approver"], a["decision"], a["reason"]) for a in body["approvals"]] == [
        (email("bob"), "approve", "go ahead")
    ]

    assert api.work() == 1
    shown = api.get("alice", f"/requests/{asked['id']}").json()
    assert shown["state"] == "active"

    [held] = api.get("alice", "/access").json()["items"]
    assert held["id"] == grant["id"]
    assert held["state"] == "active"
    assert held["ends_at"] == "2026-01-05T11:00:00Z"
    details = api.get("alice", f"/access/{grant['id']}").json()
    assert details["state"] == "active"
    assert details["username"] == email("alice")
    assert details["password"] is None  # built-in groups hand out no secret

    oncall = api.get("dave", "/groups/oncall").json()
    assert {
        "email": email("alice"),
        "source": f"grant:{grant['id']}",
        "expires_at": "2026-01-05T11:00:00Z",
    } in (oncall["members"])
    assert "oncall" in api.get("alice", "/me").json()["groups"]
    assert "oncall" in api.get("alice", f"/identities/{email('alice')}").json()["groups"]

    api.clock.advance(minutes=10)
    revoked = api.post("alice", f"/access/{grant['id']}/revoke", {"reason": "done"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoking"
    assert api.work() == 1

    assert api.get("alice", "/access").json()["items"] == []
    [ended] = api.get("alice", "/access", include_ended="true").json()["items"]
    assert ended["state"] == "revoked"
    assert ended["end_reason"] == "done"
    assert api.get("alice", f"/access/{grant['id']}").json()["password"] is None
    assert all(m["email"] != email("alice") for m in api.get("alice", "/groups/oncall").json()["members"])
    assert api.get("alice", f"/requests/{asked['id']}").json()["state"] == "ended"

    actions = [e["action"] for e in api.get("root", "/audit", subject=grant["id"]).json()["items"]]
    # The credential view while it was active is on the record (the API audits it as the portal does).
    assert actions == [
        "grant.revoked",
        "grant.revoke_requested",
        "grant.credentials_revealed",
        "grant.activated",
    ]


def test_revoke_a_whole_request(api: Api) -> None:
    asked = api.ask("alice")
    api.post("bob", f"/requests/{asked['id']}/approve", {})
    api.work()
    revoked = api.post("carol", f"/requests/{asked['id']}/revoke", {"reason": "incident over"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoking"
    api.work()
    assert api.get("alice", f"/requests/{asked['id']}").json()["state"] == "ended"
    problem(api.post("carol", f"/requests/{asked['id']}/revoke", {}), 409)


def test_lease_ends_on_time(api: Api) -> None:
    asked = api.ask("alice", duration="20s")
    api.post("bob", f"/requests/{asked['id']}/approve")
    api.work()
    assert api.get("alice", "/access").json()["total"] == 1
    api.clock.advance(seconds=21)
    api.work()
    assert api.get("alice", "/access").json()["total"] == 0
    assert api.get("alice", f"/requests/{asked['id']}").json()["state"] == "ended"


def test_resources(api: Api) -> None:
    page = api.get("dave", "/resources").json()
    assert page["total"] == 2
    assert [r["path"] for r in page["items"]] == ["groups/dba", "groups/oncall"]
    first = page["items"][0]
    assert set(first) == {"id", "integration", "type", "name", "path", "parent", "deleted_at", "tags"}
    assert first["integration"] == "groups" and first["tags"] == {}
    assert first["type"] == "group"

    assert api.get("dave", "/resources", q="CALL").json()["total"] == 1
    assert api.get("dave", "/resources", path_prefix="groups/d").json()["total"] == 1
    assert api.get("dave", "/resources", path_prefix="groups/%").json()["total"] == 0
    assert api.get("dave", "/resources", integration="nope").json()["total"] == 0
    assert (
        api.get("dave", "/resources", type="group", limit=1, offset=1).json()["items"][0]["name"] == "oncall"
    )

    assert api.get("dave", f"/resources/{first['id']}").json() == first
    assert api.get("dave", "/resources/groups/dba").json() == first
    problem(api.get("dave", "/resources/res_missing"), 404)


def test_flows_identities_groups_integrations(api: Api) -> None:
    [flow] = api.get("alice", "/flows").json()["items"]
    assert flow["name"] == "oncall"
    assert flow["max_duration"] == "4h"
    assert api.get("alice", "/flows/oncall").json() == flow
    problem(api.get("alice", "/flows/nope"), 404)

    people = api.get("root", "/identities").json()
    assert people["total"] == 5
    bob = next(p for p in people["items"] if p["email"] == email("bob"))
    assert bob == {
        "email": email("bob"),
        "name": "Bob",
        "active": True,
        "manager": None,
        "groups": ["leads"],
        "attributes": {"team": "platform"},
    }
    assert api.get("root", f"/identities/{email('BOB')}").json() == bob
    # Others' attributes are for those who read everything.
    assert api.get("alice", f"/identities/{email('BOB')}").json() == {**bob, "attributes": {}}
    problem(api.get("alice", "/identities/nobody@example.com"), 404)

    groups = api.get("alice", "/groups").json()
    assert [g["name"] for g in groups["items"]] == ["dba", "engineers", "leads", "oncall"]
    leads = api.get("alice", "/groups/leads").json()
    assert [m["email"] for m in leads["members"]] == [email("bob"), email("carol")]
    assert leads["members"][0] == {"email": email("bob"), "source": "config", "expires_at": None}
    problem(api.get("alice", "/groups/nope"), 404)

    [integration] = api.get("alice", "/integrations").json()["items"]
    assert integration["name"] == "groups"
    assert integration["kind"] == "builtin_groups"
    assert integration["resource_count"] == 2
    assert "config" not in integration


def test_sync_is_for_admins(api: Api) -> None:
    problem(api.post("alice", "/integrations/groups/sync"), 403)
    synced = api.post("root", "/integrations/groups/sync")
    assert synced.status_code == 200, synced.text
    assert synced.json() == {"integration": "groups", "added": 0, "updated": 0, "deleted": 0, "total": 2}
    problem(api.post("root", "/integrations/nope/sync"), 404)


def test_audit_pages_newest_first(api: Api) -> None:
    api.ask("alice")
    first = api.get("root", "/audit", limit=2).json()["items"]
    assert len(first) == 2
    assert first[0]["id"] > first[1]["id"]
    assert first[0]["action"] == "request.created"
    older = api.get("root", "/audit", limit=500, before_id=first[1]["id"]).json()["items"]
    assert older and all(e["id"] < first[1]["id"] for e in older)
    created = api.get("root", "/audit", action="request.created").json()["items"]
    assert [e["actor"] for e in created] == [email("alice")]


def test_openapi_and_docs(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    assert "/api/v1/requests" in schema["paths"]
    assert "/api/v1/requests/{request_id}/approve" in schema["paths"]
    assert api.client.get("/docs").status_code == 200


def test_sync_target_failure_is_502(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(self: BuiltinGroupsConnector) -> list:
        raise TargetError("groups: connection refused")

    monkeypatch.setattr(BuiltinGroupsConnector, "discover", unreachable)
    body = problem(api.post("root", "/integrations/groups/sync"), 502)
    assert body["detail"] == "groups: connection refused"
    [integration] = api.get("root", "/integrations").json()["items"]
    assert integration["last_sync_error"] == "groups: connection refused"
    [as_seen_by_alice] = api.get("alice", "/integrations").json()["items"]
    assert as_seen_by_alice["last_sync_error"] is None  # a target's errors name its hosts
