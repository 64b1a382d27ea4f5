"""Break-glass through the API: the requester approves their own emergency request at once, approvers
are told and review it afterwards; a review may end the access; a second one is refused while the first
is unreviewed where the flow says so."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx

from tests.api.break_glass_fixtures import allow_break_glass, break_glass_body
from tests.api.conftest import PEOPLE, Api, email, problem


def _in_group(api: Api, who: str, group: str) -> bool:
    return group in api.get(who, "/me").json()["groups"]


def test_break_glass_grants_at_once_and_waits_for_review(any_store_api: Api) -> None:
    api = any_store_api
    allow_break_glass(api)
    response = api.post("alice", "/requests", break_glass_body())
    assert response.status_code == 201, response.text
    opened = response.json()
    assert opened["status"] == "approved"
    assert opened["decided_by"] == email("alice")
    assert opened["decision_reason"] == "the database is down"
    assert opened["reason"] == "the database is down"
    assert opened["break_glass"] is True
    assert opened["incident"] == "INC-123"
    assert opened["review"] == "awaiting_review"
    assert opened["state"] == "granting"
    api.work()
    shown = api.get("alice", f"/requests/{opened['id']}").json()
    assert shown["state"] == "active"
    assert shown["review"] == "awaiting_review"
    assert _in_group(api, "alice", "oncall")

    # Approvers (bob, carol) see it to review; the requester and others do not.
    for who in ("bob", "carol"):
        listed = api.get(who, "/requests", scope="to_review").json()
        assert [r["id"] for r in listed["items"]] == [opened["id"]], who
    for who in ("alice", "dave"):
        assert api.get(who, "/requests", scope="to_review").json()["total"] == 0, who

    events = api.get("root", "/audit", subject=opened["id"]).json()["items"]
    [glass] = [e for e in events if e["action"] == "request.break_glass"]
    assert glass["actor"] == email("alice")
    assert glass["reason"] == "the database is down"
    assert glass["details"]["break_glass"] is True
    assert glass["details"]["incident"] == "INC-123"
    assert not [e for e in events if e["action"] in ("request.created", "request.approved")]

    reviewed = api.post("bob", f"/requests/{opened['id']}/review", {"reason": "saw the outage"})
    assert reviewed.status_code == 200, reviewed.text
    body = reviewed.json()
    assert body["review"] == "reviewed"
    assert body["reviewed_by"] == email("bob")
    assert body["review_reason"] == "saw the outage"
    assert body["state"] == "active"  # reviewed as justified: the access runs its course
    assert api.get("carol", "/requests", scope="to_review").json()["total"] == 0
    again = problem(api.post("carol", f"/requests/{opened['id']}/review", {"reason": "late"}), 409)
    assert "already reviewed by bob@example.com" in again["detail"]
    events = api.get("root", "/audit", subject=opened["id"]).json()["items"]
    [review] = [e for e in events if e["action"] == "request.break_glass_reviewed"]
    assert review["details"] | {"via": None} == {
        "requester": email("alice"),
        "flow": "oncall",
        "break_glass": True,
        "incident": "INC-123",
        "outcome": "ok",
        "via": None,
    }


def test_a_review_that_revokes_ends_the_access_at_once(any_store_api: Api) -> None:
    api = any_store_api
    allow_break_glass(api)
    opened = api.post("alice", "/requests", break_glass_body()).json()
    api.work()
    assert _in_group(api, "alice", "oncall")
    body = {"reason": "no incident by that name", "outcome": "revoke"}
    revoked = api.post("carol", f"/requests/{opened['id']}/review", body)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["review"] == "revoked"
    assert revoked.json()["state"] == "revoking"
    api.work()
    assert not _in_group(api, "alice", "oncall")
    assert api.get("alice", f"/requests/{opened['id']}").json()["state"] == "ended"


def test_a_second_break_glass_is_refused_while_the_first_is_unreviewed(any_store_api: Api) -> None:
    api = any_store_api
    allow_break_glass(api)
    first = api.post("alice", "/requests", break_glass_body()).json()
    refused = problem(api.post("alice", "/requests", break_glass_body(group="dba")), 409)
    assert first["id"] in refused["detail"]
    assert "one unreviewed break-glass request at a time" in refused["detail"]
    # Another person is not held back by alice's.
    assert api.post("dave", "/requests", break_glass_body(group="dba")).status_code == 201
    api.post("bob", f"/requests/{first['id']}/review", {"reason": "fine"})
    assert api.post("alice", "/requests", break_glass_body(group="dba")).status_code == 201


def test_without_one_at_a_time_a_second_is_allowed(api: Api) -> None:
    allow_break_glass(api, one_at_a_time=False)
    assert api.post("alice", "/requests", break_glass_body()).status_code == 201
    assert api.post("alice", "/requests", break_glass_body(group="dba")).status_code == 201
    assert api.get("bob", "/requests", scope="to_review").json()["total"] == 2


def test_break_glass_is_refused_where_the_flow_has_none(api: Api) -> None:
    refused = problem(api.post("alice", "/requests", break_glass_body()), 403)
    assert "no access flow allows break-glass access for alice@example.com" in refused["detail"]
    named = problem(api.post("alice", "/requests", break_glass_body() | {"flow": "oncall"}), 403)
    assert "flow 'oncall' does not allow break-glass access" in named["detail"]


def test_break_glass_is_capped_at_the_flows_break_glass_duration(api: Api) -> None:
    allow_break_glass(api)
    refused = problem(api.post("alice", "/requests", break_glass_body(duration="45m")), 422)
    assert refused["detail"] == (
        "duration 45m is longer than flow 'oncall' allows for break-glass access (30m); ask for 30m or less"
    )
    # The flow's own maximum (4h) is for requests approvers approve, not for break-glass.
    problem(api.post("alice", "/requests", break_glass_body(duration="2h")), 422)


def test_allowed_limits_who_may_break_the_glass(api: Api) -> None:
    allow_break_glass(api, allowed=[{"user": email("dave")}])
    problem(api.post("alice", "/requests", break_glass_body()), 403)
    assert api.post("dave", "/requests", break_glass_body()).status_code == 201


def test_break_glass_starts_at_once(api: Api) -> None:
    allow_break_glass(api)
    later = (api.clock() + timedelta(hours=1)).isoformat()
    refused = problem(api.post("alice", "/requests", break_glass_body() | {"starts_at": later}), 422)
    assert refused["detail"] == "break-glass access starts at once; leave out the start time"


def test_approving_ones_own_request_stays_refused(api: Api) -> None:
    """Break-glass is the only self-decision: a normal request under a break-glass flow is not."""
    allow_break_glass(api)
    asked = api.ask("alice")
    refused = problem(api.post("alice", f"/requests/{asked['id']}/approve", {"reason": "me"}), 403)
    assert "your own request" in refused["detail"]
    assert asked["review"] is None and asked["break_glass"] is False
    problem(api.post("carol", f"/requests/{asked['id']}/review", {"reason": "x"}), 409)


def test_review_authorisation_walked_by_every_person(api: Api) -> None:
    """Only the approvers the engine names for the request review it; never its requester."""
    allow_break_glass(api)
    opened = api.post("alice", "/requests", break_glass_body()).json()
    may_review = {"bob", "carol"}
    for who in PEOPLE:
        if who in may_review:
            continue
        answer = api.post(who, f"/requests/{opened['id']}/review", {"reason": "looked"})
        # Dave may not see alice's request at all; alice and root see it but may not review it.
        assert answer.status_code in (403, 404), (who, answer.text)
        assert answer.status_code == (404 if who == "dave" else 403), who
    assert api.get("alice", f"/requests/{opened['id']}").json()["review"] == "awaiting_review"
    assert api.post("carol", f"/requests/{opened['id']}/review", {"reason": "ok"}).status_code == 200


def test_hostile_reason_and_incident_are_refused(api: Api) -> None:
    allow_break_glass(api)
    hostile = ["", "   ", "a\x00b", "x" * 2001, "\ud800"]
    for value in hostile:
        for field in ("reason", "incident"):
            body = break_glass_body(**{field: value})
            answer = api.client.post(
                "/api/v1/requests",
                headers={**api.auth("alice"), "content-type": "application/json"},
                content=_json(body),
            )
            refused = problem(answer, 422)
            assert refused["errors"], (field, value)
    too_long_incident = problem(api.post("alice", "/requests", break_glass_body(incident="I" * 201)), 422)
    assert too_long_incident["errors"][0]["location"] == "body.break_glass.incident"
    opened = api.post("alice", "/requests", break_glass_body()).json()
    for value in ["", "a\x00b", "x" * 2001]:
        problem(api.post("bob", f"/requests/{opened['id']}/review", {"reason": value}), 422)
    problem(api.post("bob", f"/requests/{opened['id']}/review", {"reason": "x", "outcome": "maybe"}), 422)
    assert api.get("bob", f"/requests/{opened['id']}").json()["review"] == "awaiting_review"


def _json(body: dict[str, Any]) -> bytes:
    """JSON with lone surrogates written as escapes (what a hostile client can send)."""
    return json.dumps(body, ensure_ascii=True).encode()


def test_the_gauge_counts_unreviewed_break_glass(api: Api) -> None:
    allow_break_glass(api, one_at_a_time=False)

    def gauge() -> float:
        text = api.client.get("/metrics").text
        line = next(line for line in text.splitlines() if line.startswith("sluice_break_glass_unreviewed "))
        return float(line.split()[1])

    assert gauge() == 0
    first = api.post("alice", "/requests", break_glass_body()).json()
    api.post("alice", "/requests", break_glass_body(group="dba"))
    assert gauge() == 2
    api.post("bob", f"/requests/{first['id']}/review", {"reason": "fine"})
    assert gauge() == 1


def _at_once(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response] = []

    def run(call: Callable[[], httpx.Response]) -> None:
        barrier.wait()
        answers.append(call())

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_two_break_glass_at_once_by_one_person_let_one_through(any_store_api: Api) -> None:
    api = any_store_api
    allow_break_glass(api)
    answers = _at_once(
        lambda: api.post("alice", "/requests", break_glass_body()),
        lambda: api.post("alice", "/requests", break_glass_body(group="dba")),
    )
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    assert api.get("bob", "/requests", scope="to_review").json()["total"] == 1


def test_two_reviews_at_once_record_one(any_store_api: Api) -> None:
    api = any_store_api
    allow_break_glass(api)
    opened = api.post("alice", "/requests", break_glass_body()).json()
    path = f"/requests/{opened['id']}/review"
    answers = _at_once(
        lambda: api.post("bob", path, {"reason": "bob looked"}),
        lambda: api.post("carol", path, {"reason": "carol looked", "outcome": "revoke"}),
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    events = api.get("root", "/audit", subject=opened["id"]).json()["items"]
    assert len([e for e in events if e["action"] == "request.break_glass_reviewed"]) == 1
