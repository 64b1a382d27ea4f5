"""Who may decide what, and what a stale decision gets."""

from __future__ import annotations

from sqlalchemy import select

from sluice.store.db import transaction
from sluice.store.tables import AuditEvent
from tests.api.conftest import Api, email, problem


def test_requester_cannot_approve_own_request(api: Api) -> None:
    asked = api.ask("alice")
    body = problem(api.post("alice", f"/requests/{asked['id']}/approve"), 403)
    assert "your own request" in body["detail"]


def test_someone_not_named_by_the_flow_cannot_approve(api: Api) -> None:
    asked = api.ask("alice")
    # dave may not see the request at all: the same 404 as for an absent one
    body = problem(api.post("dave", f"/requests/{asked['id']}/approve", {"reason": "sure"}), 404)
    assert "oncall" not in body["detail"]
    body = problem(api.post("root", f"/requests/{asked['id']}/approve"), 403)  # admin is not an approver
    assert "not an approver of flow 'oncall'" in body["detail"]
    assert api.get("alice", f"/requests/{asked['id']}").json()["status"] == "pending"


def test_cancel_pending(api: Api) -> None:
    asked = api.ask("alice")
    cancelled = api.post("alice", f"/requests/{asked['id']}/cancel", {"reason": "not needed"})
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["state"] == "cancelled"
    assert body["grants"][0]["state"] == "not_granted"
    assert api.get("alice", "/access").json()["items"] == []
    problem(api.post("bob", f"/requests/{asked['id']}/approve"), 409)


def test_cancel_by_someone_else_is_refused(api: Api) -> None:
    asked = api.ask("alice")
    problem(api.post("dave", f"/requests/{asked['id']}/cancel"), 404)  # may not even see it
    problem(api.post("bob", f"/requests/{asked['id']}/cancel"), 403)
    assert api.post("root", f"/requests/{asked['id']}/cancel").status_code == 200


def test_reject_needs_a_reason(api: Api) -> None:
    asked = api.ask("alice")
    body = problem(api.post("bob", f"/requests/{asked['id']}/reject", {"reason": " "}), 422)
    assert "say why" in body["detail"]
    rejected = api.post("bob", f"/requests/{asked['id']}/reject", {"reason": "use the runbook"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["decision_reason"] == "use the runbook"


def test_stale_decision_is_409(api: Api) -> None:
    asked = api.ask("alice")
    assert api.post("bob", f"/requests/{asked['id']}/approve").status_code == 200
    body = problem(api.post("carol", f"/requests/{asked['id']}/approve"), 409)
    assert "already approved" in body["detail"]
    problem(api.post("carol", f"/requests/{asked['id']}/reject", {"reason": "late"}), 409)


def test_decision_body_refuses_unknown_fields(api: Api) -> None:
    asked = api.ask("alice")
    problem(api.post("bob", f"/requests/{asked['id']}/approve", {"reason": "ok", "force": True}), 422)


def test_unknown_request_is_404(api: Api) -> None:
    problem(api.post("bob", "/requests/req_nope/approve"), 404)
    problem(api.get("bob", "/requests/req_nope"), 404)


def test_who_sees_a_request(api: Api) -> None:
    asked = api.ask("alice")
    for who in ("alice", "bob", "carol", "root"):
        assert api.get(who, f"/requests/{asked['id']}").status_code == 200, who
    problem(api.get("dave", f"/requests/{asked['id']}"), 404)
    assert api.get("dave", "/requests").json() == {"items": [], "total": 0}
    everything = api.get("root", "/requests", scope="all", status="pending").json()
    assert [r["id"] for r in everything["items"]] == [asked["id"]]
    assert api.get("root", "/requests", scope="all", status="approved").json()["total"] == 0


def test_to_approve_pages(api: Api) -> None:
    ids = [api.ask("alice", group=g)["id"] for g in ("oncall", "dba")]
    ids.append(api.ask("dave")["id"])
    api.clock.advance(seconds=1)
    waiting = api.get("bob", "/requests", scope="to_approve", limit=2).json()
    assert waiting["total"] == 3
    assert len(waiting["items"]) == 2
    rest = api.get("bob", "/requests", scope="to_approve", limit=2, offset=2).json()
    seen = {r["id"] for r in waiting["items"]} | {r["id"] for r in rest["items"]}
    assert seen == set(ids)


def test_someone_elses_credentials_are_404(api: Api) -> None:
    asked = api.ask("alice")
    api.post("bob", f"/requests/{asked['id']}/approve")
    api.work()
    grant_id = asked["grants"][0]["id"]
    assert api.get("alice", f"/access/{grant_id}").status_code == 200
    for who in ("bob", "dave", "root"):
        body = problem(api.get(who, f"/access/{grant_id}"), 404)
        assert grant_id in body["detail"]
    # Each showing of the secret is on the record, naming the grant and who saw it; refusals are not.
    with transaction(api.runtime.factory) as session:
        shown = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "grant.credentials_revealed")
        ).all()
        assert [(e.actor, e.subject_id) for e in shown] == [(email("alice"), grant_id)]
        assert all("password" not in str(e.details) for e in shown)


def test_revoking_someone_elses_grant(api: Api) -> None:
    asked = api.ask("alice")
    api.post("bob", f"/requests/{asked['id']}/approve")
    api.work()
    grant_id = asked["grants"][0]["id"]
    problem(api.post("dave", f"/access/{grant_id}/revoke", {"reason": "mine now"}), 404)
    revoked = api.post("carol", f"/access/{grant_id}/revoke", {"reason": "incident closed"})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["grantee"] == email("alice")
    problem(api.post("carol", f"/access/{grant_id}/revoke"), 409)
