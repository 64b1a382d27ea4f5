"""The portal's core actions without JavaScript: search and request, approve (several at once),
reveal credentials (audited, never cached), end early; nobody approves their own request."""

from __future__ import annotations

import re

from sqlalchemy import select

from sluice.store.db import transaction
from sluice.store.tables import AuditEvent
from tests.web.conftest import Portal


def _ask(portal: Portal, who: str = "alice", reason: str = "incident 42", group: str = "oncall") -> str:
    client = portal.browser(who)
    unit = f"member groups/{group}"
    found = client.get("/request", params={"q": group[:3]})
    assert found.status_code == 200 and f'value="{unit}"' in found.text
    review = client.get("/request/review", params={"unit": unit})
    assert review.status_code == 200, review.text
    assert "bob@example.com" in review.text and "carol@example.com" in review.text  # who approves
    answer = portal.post(client, "/request", unit=unit, duration="1h", reason=reason)
    assert answer.status_code == 303, answer.text
    match = re.fullmatch(r"/requests/(\w+)", answer.headers["location"])
    assert match
    return match.group(1)


def test_type_ahead_returns_only_matching_results(portal: Portal) -> None:
    alice = portal.browser("alice")
    part = alice.get("/request/search", params={"q": "dba"}, headers={"HX-Request": "true"})
    assert "groups/dba" in part.text and "groups/oncall" not in part.text and "<html" not in part.text
    bob = portal.browser("bob")  # bob is no requester of any flow
    assert "groups/dba" not in bob.get("/request/search", params={"q": "dba"}).text


def test_request_approve_reveal_and_end(portal: Portal) -> None:
    request_id = _ask(portal)
    carol = portal.browser("carol")
    inbox = carol.get("/approvals")
    assert request_id in inbox.text and "incident 42" in inbox.text
    decided = portal.post(carol, "/approvals", request=[request_id], decision="approve", reason="ok")
    assert decided.status_code == 200 and "approved" in decided.text
    portal.api.work()
    alice = portal.browser("alice")
    live = alice.get("/access/live", headers={"HX-Request": "true"})
    grant_id = re.search(r'data-grant="(\w+)" data-state="active"', live.text)
    assert grant_id, live.text
    assert "Show credentials" in live.text and "username" not in live.text
    shown = portal.post(alice, f"/access/{grant_id.group(1)}/reveal")
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    with transaction(portal.api.runtime.factory) as session:
        reveals = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "grant.credentials_revealed")
        ).all()
        assert [(e.actor, e.subject_id) for e in reveals] == [("alice@example.com", grant_id.group(1))]
    timeline = alice.get(f"/requests/{request_id}")
    assert "request.created" in timeline.text and "request.approved" in timeline.text
    # Someone else cannot reveal it: the same answer as for no grant at all.
    assert portal.post(carol, f"/access/{grant_id.group(1)}/reveal").status_code == 404
    ended = portal.post(alice, f"/access/{grant_id.group(1)}/end")
    assert ended.status_code == 303
    portal.api.work()
    assert grant_id.group(1) not in alice.get("/access").text


def test_several_requests_decided_at_once(portal: Portal) -> None:
    first = _ask(portal, "alice")
    second = _ask(portal, "dave")
    bob = portal.browser("bob")
    answer = portal.post(bob, "/approvals", request=[first, second], decision="reject", reason="not now")
    assert answer.status_code == 200
    assert answer.text.count("rejected") >= 2
    for request_id in (first, second):
        shown = portal.api.get("root", f"/requests/{request_id}").json()
        assert shown["status"] == "rejected" and shown["decided_by"] == "bob@example.com"


def test_nobody_approves_their_own_request(portal: Portal) -> None:
    request_id = _ask(portal, "alice")
    alice = portal.browser("alice")
    assert request_id not in alice.get("/approvals").text
    page = alice.get(f"/requests/{request_id}")
    assert "You cannot approve your own request" in page.text
    assert 'value="approve"' not in page.text
    refused = portal.post(alice, f"/requests/{request_id}/decide", decision="approve")
    assert refused.status_code == 403, refused.text
    batch = portal.post(alice, "/approvals", request=[request_id], decision="approve")
    assert batch.status_code == 409 and f'<li class="error"><a href="/requests/{request_id}">' in batch.text
    assert portal.api.get("root", f"/requests/{request_id}").json()["status"] == "pending"


def test_history_and_csv_export(portal: Portal) -> None:
    _ask(portal, "alice", reason="=cmd|' /C calc'!A0")
    alice = portal.browser("alice")
    page = alice.get("/history")
    assert "groups/oncall" in page.text
    exported = alice.get("/history.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "'=cmd" in exported.text  # a formula is written as text
    assert alice.get("/history", params={"scope": "all"}).status_code == 403
    root = portal.browser("root", admin=True)
    assert "alice@example.com" in root.get("/history", params={"scope": "all"}).text
