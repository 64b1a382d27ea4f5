"""My access shows what is approved for a later start as upcoming, with its start, and lets the one who
asked cancel it (the API's cancel); what waits for approval can be withdrawn rather than "ended"."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

from tests.api.conftest import email
from tests.web.conftest import Portal
from tests.web.test_request_form import DBA, _made, on_behalf  # noqa: F401  (a fixture)


def _ask_later(portal: Portal, who: str = "alice", **fields: str) -> tuple[str, str]:
    """Ask for DBA membership 3 hours from now; (request id, the start as the form sent it)."""
    later = (portal.api.clock() + timedelta(hours=3)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    browser = portal.browser(who)
    answer = portal.post(
        browser, "/request", unit=DBA, duration="1h", reason="window", starts_at=later, **fields
    )
    assert answer.status_code == 303, answer.text
    return _made(answer.headers["location"]), later.replace("T", " ")


def _row(page: str, state: str) -> str:
    found = re.search(rf'<tr data-grant="\w+" data-state="{state}">.*?</tr>', page, re.S)
    return found.group(0) if found else ""


def test_an_approved_later_start_is_upcoming_until_it_begins(portal: Portal) -> None:
    request_id, start = _ask_later(portal)
    alice = portal.browser("alice")
    waiting = alice.get("/access").text
    assert "Upcoming" not in waiting and "awaits approval" in _row(waiting, "pending")
    assert portal.api.post("carol", f"/requests/{request_id}/approve", {"reason": "ok"}).status_code == 200

    page = alice.get("/access").text
    upcoming = _row(page, "upcoming")
    assert "Upcoming (1)" in page and "groups/dba" in upcoming and f"{start}:00 UTC" in upcoming
    assert "End now" not in page and "Show credentials" not in page
    assert f'action="/requests/{request_id}/decide"' in upcoming and 'value="cancel"' in upcoming
    assert "Upcoming (1)" in alice.get("/access/live").text

    portal.api.clock.advance(hours=3, minutes=1)
    portal.api.work()
    begun = alice.get("/access").text
    assert "Upcoming" not in begun and 'data-state="active"' in begun


def test_the_asker_cancels_an_upcoming_grant(portal: Portal) -> None:
    request_id, _ = _ask_later(portal)
    assert portal.api.post("carol", f"/requests/{request_id}/approve", {"reason": "ok"}).status_code == 200
    alice = portal.browser("alice")
    answer = portal.post(alice, f"/requests/{request_id}/decide", decision="cancel")
    assert answer.status_code == 303, answer.text
    assert portal.api.get("alice", f"/requests/{request_id}").json()["status"] == "cancelled"
    page = alice.get("/access").text
    assert "Upcoming" not in page and "You hold no access right now." in page


def test_waiting_for_approval_is_withdrawn_not_ended(portal: Portal) -> None:
    request_id, _ = _ask_later(portal)
    row = _row(portal.browser("alice").get("/access").text, "pending")
    assert "Withdraw request" in row and "End now" not in row
    assert (
        portal.post(portal.browser("alice"), f"/requests/{request_id}/decide", decision="cancel").status_code
        == 303
    )
    assert portal.api.get("alice", f"/requests/{request_id}").json()["status"] == "cancelled"


def test_whom_it_is_for_sees_it_upcoming_but_only_the_asker_cancels(on_behalf: Portal) -> None:  # noqa: F811
    portal = on_behalf
    request_id, _ = _ask_later(portal, on_behalf_of=email("dave"))
    assert portal.api.post("carol", f"/requests/{request_id}/approve", {"reason": "ok"}).status_code == 200
    dave = portal.browser("dave")
    upcoming = _row(dave.get("/access").text, "upcoming")
    assert "groups/dba" in upcoming and "Cancel" not in upcoming
    refused = portal.post(dave, f"/requests/{request_id}/decide", decision="cancel")
    assert refused.status_code == 403
    assert portal.api.get("root", f"/requests/{request_id}").json()["status"] == "approved"
    assert "groups/dba" not in _row(portal.browser("alice").get("/access").text, "upcoming")
