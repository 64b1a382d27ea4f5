"""The request form's choices: a bundle, a duration up to the flow's maximum, a later start, and
asking on someone's behalf where a flow allows it; hostile values in the new fields are refused as
pages, never stored or shown as markup."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest

from tests.api.conftest import email
from tests.api.targeting_fixtures import put_flow
from tests.web.conftest import Portal
from tests.web.test_hostile_input import HOSTILE

DBA = "member groups/dba"


def _made(answer_location: str) -> str:
    match = re.fullmatch(r"/requests/(\w+)", answer_location)
    assert match, answer_location
    return match.group(1)


def test_durations_offered_stop_at_the_flows_maximum(portal: Portal) -> None:
    alice = portal.browser("alice")
    review = alice.get("/request/review", params={"unit": DBA})
    offered = re.findall(r'<option value="([^"]+)"', review.text)
    assert offered == ["15m", "30m", "1h", "2h", "4h"]  # the on-call flow allows at most 4h
    assert "selected>1h<" in review.text.replace('"1h" selected', "selected")
    too_long = portal.post(alice, "/request", unit=DBA, duration="8h", reason="long")
    assert too_long.status_code in (403, 422) and "4h" in too_long.text
    assert portal.api.get("alice", "/requests").json()["total"] == 0


def test_a_later_start_is_recorded_and_a_past_or_malformed_one_refused(portal: Portal) -> None:
    alice = portal.browser("alice")
    later = (portal.api.clock() + timedelta(hours=3)).astimezone(UTC).replace(second=0, microsecond=0)
    answer = portal.post(
        alice,
        "/request",
        unit=DBA,
        duration="1h",
        reason="window",
        starts_at=later.strftime("%Y-%m-%dT%H:%M"),
    )
    assert answer.status_code == 303, answer.text
    shown = portal.api.get("alice", f"/requests/{_made(answer.headers['location'])}").json()
    assert shown["starts_at"].startswith(later.strftime("%Y-%m-%dT%H:%M"))
    past = (portal.api.clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert (
        portal.post(alice, "/request", unit=DBA, duration="1h", reason="x", starts_at=past).status_code == 422
    )
    for bad in ("tomorrow", HOSTILE, "2026-01-05T10:00\x00"):
        refused = portal.post(alice, "/request", unit=DBA, duration="1h", reason="x", starts_at=bad)
        assert refused.status_code == 422 and "<script>alert" not in refused.text
    assert portal.api.get("alice", "/requests").json()["total"] == 1


@pytest.fixture
def on_behalf(portal: Portal) -> Portal:
    put_flow(
        portal.api.runtime,
        {
            "name": "dba-for-others",
            "requesters": [{"group": "engineers"}],
            "grantees": [{"group": "engineers"}],
            "on_behalf": [{"user": email("alice")}],
            "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
            "approvers": [{"group": "leads"}],
            "max_duration": "2h",
        },
    )
    return portal


def test_asking_for_someone_else_where_the_flow_allows_it(on_behalf: Portal) -> None:
    portal = on_behalf
    alice = portal.browser("alice")
    assert 'name="on_behalf_of"' in alice.get("/request/review", params={"unit": DBA}).text
    answer = portal.post(
        alice, "/request", unit=DBA, duration="1h", reason="cover", on_behalf_of=email("dave")
    )
    assert answer.status_code == 303, answer.text
    request_id = _made(answer.headers["location"])
    shown = portal.api.get("root", f"/requests/{request_id}").json()
    assert (shown["requester"], shown["on_behalf_of"]) == (email("alice"), email("dave"))
    # dave, whom it is for, neither finds it in his inbox nor may decide on it
    dave = portal.browser("dave")
    assert request_id not in dave.get("/approvals").text
    refused = portal.post(dave, f"/requests/{request_id}/decide", decision="approve", reason="mine")
    assert refused.status_code in (403, 404)
    assert portal.api.get("root", f"/requests/{request_id}").json()["status"] == "pending"
    # dave is named by no on_behalf: he may not ask for alice
    other = portal.post(dave, "/request", unit=DBA, duration="1h", reason="x", on_behalf_of=email("alice"))
    assert other.status_code == 403 and "ask for someone else" in other.text


def test_hostile_on_behalf_values_are_refused(on_behalf: Portal) -> None:
    alice = on_behalf.browser("alice")
    for bad in (HOSTILE, "dave\x00@example.com", "x" * 300 + "@example.com"):
        refused = on_behalf.post(alice, "/request", unit=DBA, duration="1h", reason="x", on_behalf_of=bad)
        assert refused.status_code == 422, (bad, refused.status_code)
        assert "<script>alert" not in refused.text
    unknown = on_behalf.post(
        alice, "/request", unit=DBA, duration="1h", reason="x", on_behalf_of="nobody@example.com"
    )
    assert unknown.status_code == 404
    assert on_behalf.api.get("alice", "/requests").json()["total"] == 0


def test_a_bundle_is_picked_reviewed_and_asked_for(portal: Portal) -> None:
    portal.api.put_group_bundle("dba-kit", "dba")
    put_flow(
        portal.api.runtime,
        {
            "name": "kit",
            "requesters": [{"group": "engineers"}],
            "targets": [{"bundle": "dba-kit"}],
            "approvers": [{"group": "leads"}],
            "max_duration": "1h",
        },
    )
    alice = portal.browser("alice")
    assert "/request/review?bundle=dba-kit" in alice.get("/request").text
    review = alice.get("/request/review", params={"bundle": "dba-kit"})
    assert review.status_code == 200, review.text
    assert f'name="unit" value="{DBA}"' in review.text
    answer = portal.post(alice, "/request", unit=DBA, duration="1h", reason="kit")
    assert answer.status_code == 303, answer.text
    assert alice.get("/request/review", params={"bundle": "no-such"}).status_code == 404
    hostile = alice.get("/request/review", params={"bundle": HOSTILE})
    assert hostile.status_code == 404 and "<script>alert" not in hostile.text
    assert alice.get("/request/review", params={"bundle": "kit\x00"}).status_code == 422
