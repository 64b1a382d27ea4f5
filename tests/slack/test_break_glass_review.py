"""Reviewing break-glass from Slack: the message every approver (and the flow's channel) gets carries a
Review button, which opens a form asking the outcome and a reason; submitting it reviews through the
same use case as the API. Once the request is reviewed, from Slack or anywhere else, every message
about it says by whom and how, and its button is gone."""

from __future__ import annotations

from typing import Any

import pytest

from sluice.services.notify.slack_blocks import REVIEW, REVIEW_VIEW
from sluice.worker.loop import Worker
from tests.api.break_glass_fixtures import allow_break_glass, break_glass_body
from tests.api.conftest import Api, email, problem
from tests.slack.conftest import CHANNEL, CHANNEL_ID, SlackSends, buttons, settle, slack_id, slack_worker
from tests.slack_standin import SlackStandIn

APPROVERS = ("bob", "carol")  # the leads approve the on-call flow


@pytest.fixture
def worker(slack_api: Api, slack: SlackStandIn) -> Worker:
    allow_break_glass(slack_api, notify={"destinations": [f"slack:{CHANNEL}"]})
    worker = slack_worker(slack_api, slack)
    worker.run_once()  # what the seed wrote is behind us
    return worker


@pytest.fixture
def opened(slack_api: Api, worker: Worker) -> dict[str, Any]:
    """Alice breaks the glass; the worker grants it and tells everyone on Slack."""
    response = slack_api.post("alice", "/requests", break_glass_body(reason="the <!channel> db is *down*"))
    assert response.status_code == 201, response.text
    settle(worker)
    return response.json()


def about_the_request(slack: SlackStandIn) -> list[dict[str, Any]]:
    """Every message sent to the approvers and to the flow's channel, in that order."""
    found = [m for who in APPROVERS for m in slack.in_channel(f"D{slack_id(who)}")]
    return found + slack.in_channel(CHANNEL_ID)


def review_values(outcome: str | None, reason: str) -> dict[str, Any]:
    chosen = {"selected_option": {"value": outcome}} if outcome is not None else {"selected_option": None}
    return {"outcome": {"outcome": chosen}, "reason": {"reason": {"value": reason}}}


def told(slack: SlackStandIn, who: str) -> list[str]:
    return [c["text"] for c in slack.called("chat.postEphemeral") if c["user"] == slack_id(who)]


def review_of(api: Api, request_id: str) -> dict[str, Any]:
    return api.get("alice", f"/requests/{request_id}").json()


def test_an_approver_reviews_from_slack_and_revoke_ends_the_access(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, worker: Worker, opened: dict[str, Any]
) -> None:
    request_id = opened["id"]
    assert review_of(slack_api, request_id)["state"] == "active"
    messages = about_the_request(slack)
    assert len(messages) == 3  # Bob's and Carol's direct messages, and the channel's post
    for message in messages:
        assert buttons(message) == [REVIEW]
        assert "used break-glass access" in message["text"]
        assert "the &lt;!channel&gt; db is" in str(message["blocks"])  # escaped: nobody is pinged

    # Carol clicks Review: a form asks the outcome and a reason; nothing is reviewed yet.
    assert sends.click("carol", REVIEW, request_id).status_code == 200
    [opened_form] = slack.called("views.open")
    form = opened_form["view"]
    assert opened_form["trigger_id"] == "trigger-carol"
    assert form["callback_id"] == REVIEW_VIEW and form["private_metadata"] == request_id
    summary = form["blocks"][0]["text"]["text"]
    assert "member on groups/oncall" in summary and "INC-123" in summary
    outcome_block = next(b for b in form["blocks"] if b.get("block_id") == "outcome")
    assert [o["value"] for o in outcome_block["element"]["options"]] == ["ok", "revoke"]
    assert review_of(slack_api, request_id)["review"] == "awaiting_review"

    # Both answers are required; what is typed is checked like any text from outside.
    none_chosen = sends.submit_view("carol", REVIEW_VIEW, review_values(None, "looked"), request_id)
    assert none_chosen.json()["response_action"] == "errors" and "outcome" in none_chosen.json()["errors"]
    blank = sends.submit_view("carol", REVIEW_VIEW, review_values("revoke", "  "), request_id)
    assert "reason" in blank.json()["errors"]
    hostile = sends.submit_view("carol", REVIEW_VIEW, review_values("revoke", "a\x00b"), request_id)
    assert "reason" in hostile.json()["errors"]
    unknown = sends.submit_view("carol", REVIEW_VIEW, review_values("maybe", "looked"), request_id)
    assert "(revoke)" in unknown.json()["errors"]["outcome"]
    assert review_of(slack_api, request_id)["review"] == "awaiting_review"

    done = sends.submit_view("carol", REVIEW_VIEW, review_values("revoke", "no such incident"), request_id)
    assert done.status_code == 200 and done.content == b""
    shown = review_of(slack_api, request_id)
    assert shown["review"] == "revoked" and shown["reviewed_by"] == email("carol")
    assert shown["review_reason"] == "no such incident"
    audit = slack_api.get("root", "/audit", subject=request_id, action="request.break_glass_reviewed").json()
    assert [(e["actor"], e["details"]["outcome"]) for e in audit["items"]] == [(email("carol"), "revoke")]

    # The worker takes the access away, and every message says who reviewed it and how, without button.
    settle(worker)
    assert review_of(slack_api, request_id)["state"] == "ended"
    assert "oncall" not in slack_api.get("alice", "/me").json()["groups"]
    for message in about_the_request(slack):
        assert buttons(message) == []
        assert "was *reviewed* by Carol: access ended: no such incident" in message["text"]
    assert len(about_the_request(slack)) == 3  # updated in place, not posted again
    # Alice hears of the review, and of her access ending.
    to_alice = [m["text"] for m in slack.in_channel(f"D{slack_id('alice')}")]
    assert "Your break-glass access was *reviewed* by Carol: access ended: no such incident" in to_alice
    assert any(t.startswith("Your access has *ended*") for t in to_alice)


def test_the_requester_and_strangers_cannot_review(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, opened: dict[str, Any]
) -> None:
    request_id = opened["id"]
    # Alice sees the channel's post too; her click is answered in words, and no form opens.
    assert sends.click("alice", REVIEW, request_id).status_code == 200
    assert told(slack, "alice") == [
        "Sluice could not do that: you cannot review your own break-glass request"
    ]
    # A forged submission is held to the same rule.
    forged = sends.submit_view("alice", REVIEW_VIEW, review_values("ok", "all fine, trust me"), request_id)
    assert "own break-glass request" in forged.json()["errors"]["reason"]
    # Dave is no approver of the flow: for him the request is not there, as in the API.
    sends.click("dave", REVIEW, request_id)
    assert told(slack, "dave") == [f"Sluice could not do that: no request {request_id!r}"]
    assert slack.called("views.open") == []
    assert review_of(slack_api, request_id)["review"] == "awaiting_review"


def test_a_review_elsewhere_updates_the_messages_and_a_later_one_is_refused(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, worker: Worker, opened: dict[str, Any]
) -> None:
    request_id = opened["id"]
    reviewed = slack_api.post("bob", f"/requests/{request_id}/review", {"reason": "saw the outage"})
    assert reviewed.status_code == 200, reviewed.text
    settle(worker)
    messages = about_the_request(slack)
    assert len(messages) == 3
    for message in messages:
        assert buttons(message) == []
        assert "was *reviewed* by Bob: access kept: saw the outage" in message["text"]

    # A click on a button Slack showed before the update is refused in words, and no form opens.
    sends.click("carol", REVIEW, request_id)
    assert told(slack, "carol") == [
        f"Sluice could not do that: request {request_id} was already reviewed by {email('bob')}"
    ]
    assert slack.called("views.open") == []
    late = sends.submit_view("carol", REVIEW_VIEW, review_values("revoke", "late"), request_id)
    assert "already reviewed by" in late.json()["errors"]["reason"]
    shown = review_of(slack_api, request_id)
    assert (shown["review"], shown["reviewed_by"], shown["state"]) == ("reviewed", email("bob"), "active")


def test_a_badly_signed_review_is_refused(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, opened: dict[str, Any]
) -> None:
    request_id = opened["id"]
    problem(sends.click("carol", REVIEW, request_id, secret="not-the-secret"), 401)
    values = review_values("revoke", "forged")
    problem(sends.submit_view("carol", REVIEW_VIEW, values, request_id, secret="not-the-secret"), 401)
    problem(sends.submit_view("carol", REVIEW_VIEW, values, request_id, age=301), 401)
    assert slack.called("views.open") == [] and slack.called("users.info") == []
    shown = review_of(slack_api, request_id)
    assert shown["review"] == "awaiting_review" and shown["state"] == "active"
