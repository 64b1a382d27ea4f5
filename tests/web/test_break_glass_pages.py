"""Break-glass in the portal: the emergency option only where a flow allows it, the request page and
the inbox's review forms for the approvers the engine names (walked by every person, answering as the
API does), the admin view listing unreviewed ones first, and hostile text refused or escaped."""

from __future__ import annotations

import re

import pytest

from tests.api.break_glass_fixtures import allow_break_glass, break_glass_body
from tests.web.conftest import Portal
from tests.web.test_hostile_input import HOSTILE

PEOPLE = ["alice", "dave", "bob", "carol", "root"]
UNIT = "member groups/oncall"


def _break_glass(portal: Portal, who: str = "alice", **fields: str) -> str:
    client = portal.browser(who)
    form = {"unit": UNIT, "duration": "20m", "reason": "the database is down", "break_glass": "on"}
    answer = portal.post(client, "/request", **(form | {"incident": "INC-123"} | fields))
    assert answer.status_code == 303, answer.text
    match = re.fullmatch(r"/requests/(\w+)", answer.headers["location"])
    assert match
    return match.group(1)


def test_the_emergency_option_shows_only_where_a_flow_allows_it(portal: Portal) -> None:
    alice = portal.browser("alice")
    assert "break-glass" not in alice.get("/request/review", params={"unit": UNIT}).text
    allow_break_glass(portal.api)
    page = alice.get("/request/review", params={"unit": UNIT}).text
    assert 'name="break_glass"' in page and "at most\n    30m" in page
    allow_break_glass(portal.api, allowed=[{"user": "dave@example.com"}])
    assert 'name="break_glass"' not in alice.get("/request/review", params={"unit": UNIT}).text


def test_break_glass_end_to_end_in_the_portal(portal: Portal) -> None:
    allow_break_glass(portal.api)
    request_id = _break_glass(portal)
    alice = portal.browser("alice")
    mine = alice.get(f"/requests/{request_id}").text
    assert "awaiting review" in mine and "INC-123" in mine
    assert f'action="/requests/{request_id}/review"' not in mine  # never one's own

    root = portal.browser("root", admin=True)
    admin = root.get("/admin").text
    assert f'data-unreviewed="{request_id}"' in admin
    assert admin.index("Break-glass awaiting review") < admin.index("Grants (stuck revokes first)")

    bob = portal.browser("bob")
    inbox = bob.get("/approvals").text
    assert "Break-glass to review (1)" in inbox and f'data-review="{request_id}"' in inbox
    assert f'action="/requests/{request_id}/review"' in bob.get(f"/requests/{request_id}").text
    done = portal.post(
        bob, f"/requests/{request_id}/review", reason="saw the outage", outcome="ok", **{"from": "inbox"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/approvals"
    assert "Break-glass to review" not in bob.get("/approvals").text
    assert f'data-unreviewed="{request_id}"' not in root.get("/admin").text
    shown = portal.api.get("alice", f"/requests/{request_id}").json()
    assert (shown["review"], shown["reviewed_by"]) == ("reviewed", "bob@example.com")


@pytest.mark.parametrize("who", PEOPLE)
def test_reviewing_answers_as_the_api(portal: Portal, who: str) -> None:
    """Each person reviews one break-glass request through the API and another through the portal:
    done on both (bob, carol: the approvers) or refused on both with the same status."""
    allow_break_glass(portal.api, one_at_a_time=False)
    by_api = portal.api.post("alice", "/requests", break_glass_body(group="dba")).json()["id"]
    by_portal = _break_glass(portal)
    probe = portal.api.post(who, f"/requests/{by_api}/review", {"reason": "walk"})
    browser = portal.browser(who, admin=who == "root")
    answer = portal.post(browser, f"/requests/{by_portal}/review", reason="walk", outcome="ok")
    assert probe.status_code == (200 if who in ("bob", "carol") else 404 if who == "dave" else 403), who
    assert (answer.status_code == 303) == (probe.status_code == 200), (who, answer.text)
    if probe.status_code != 200:
        assert answer.status_code == probe.status_code
    inbox = browser.get("/approvals").text
    assert f'data-review="{by_portal}"' not in inbox  # reviewed by now, or never theirs to review


def test_ones_own_normal_request_is_still_not_approved_in_the_portal(portal: Portal) -> None:
    allow_break_glass(portal.api)
    alice = portal.browser("alice")
    answer = portal.post(alice, "/request", unit=UNIT, duration="1h", reason="routine")
    request_id = answer.headers["location"].rsplit("/", 1)[1]
    refused = portal.post(alice, f"/requests/{request_id}/decide", decision="approve", reason="me")
    assert refused.status_code == 403
    assert portal.api.get("alice", f"/requests/{request_id}").json()["status"] == "pending"


def test_hostile_break_glass_text_is_refused_or_escaped(portal: Portal) -> None:
    allow_break_glass(portal.api, one_at_a_time=False)
    alice = portal.browser("alice")
    form = {"unit": UNIT, "duration": "20m", "reason": "down", "break_glass": "on"}
    for incident in ["", "   ", "a\x00b", "I" * 201]:
        answer = portal.post(alice, "/request", **(form | {"incident": incident}))
        assert answer.status_code == 422, (incident, answer.text)
    answer = portal.post(alice, "/request", **(form | {"incident": "INC-1", "reason": "x\x00y"}))
    assert answer.status_code == 422
    assert portal.api.get("alice", "/requests").json()["total"] == 0
    request_id = _break_glass(portal, incident=HOSTILE, reason=HOSTILE)
    for who, page in (("alice", f"/requests/{request_id}"), ("bob", "/approvals")):
        text = portal.browser(who).get(page).text
        assert "<script>alert" not in text and "&lt;script&gt;" in text
    admin = portal.browser("root", admin=True).get("/admin").text
    assert "<script>alert" not in admin and "&lt;script&gt;" in admin
    bob = portal.browser("bob")
    refused = portal.post(bob, f"/requests/{request_id}/review", reason="a\x00b", outcome="ok")
    assert refused.status_code == 422
    refused = portal.post(bob, f"/requests/{request_id}/review", reason="fine", outcome="maybe")
    assert refused.status_code == 422
