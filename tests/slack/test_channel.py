"""The Slack channel against the Web API stand-in: direct messages found by email, channel posts,
updates once decided, Block Kit within Slack's limits whatever the names and reasons hold, and
Slack's errors told apart (retry or give up)."""

from __future__ import annotations

import dataclasses
import json
import socket
from datetime import UTC, datetime

import pytest

from sluice.services.notify.channels import ChannelError, Notice, Subject
from sluice.services.notify.slack_blocks import APPROVE, EXTEND, REJECT, REVIEW, escape
from sluice.services.notify.slack_channel import SlackChannel
from sluice.services.notify.slack_settings import SlackSettings
from sluice.services.notify.slack_views import review_modal
from tests.slack.conftest import CHANNEL, CHANNEL_ID, slack_id, slack_settings
from tests.slack_standin import SlackStandIn, check_blocks, check_view

SUBJECT = Subject(
    request_id="req_1",
    grant_id=None,
    requester_name="Alice",
    requester_email="alice@example.com",
    resources=["groups/oncall"],
    resource_count=1,
    permission="member",
    duration="1h",
    reason="incident 42",
    flow="oncall",
    state="pending",
    decided_by=None,
    decision_reason=None,
    ends_at=None,
    break_glass=False,
    portal_url="https://sluice.example.com/requests/req_1",
)


def notice(topic: str = "request.created", *, to: str | None = "bob", **changes: object) -> Notice:
    base = Notice(
        notification_id="ntf_1",
        topic=topic,
        event_id=1,
        channel="slack",
        recipient_email=f"{to}@example.com" if to else None,
        recipient_identity_id=None,
        destination=None,
        role="approver",
        subject=SUBJECT,
        earlier=[],
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def buttons(message: dict) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for block in message["blocks"]
        if block["type"] == "actions"
        for e in block["elements"]
    ]


def text_of(message: dict) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


@pytest.fixture
def channel(slack: SlackStandIn) -> SlackChannel:
    return SlackChannel(slack_settings(slack).client())


def test_a_direct_message_to_the_approver_found_by_email(slack: SlackStandIn, channel: SlackChannel) -> None:
    reference = channel.send(notice())
    dm = f"D{slack_id('bob')}"
    assert reference is not None and reference.startswith(f"{dm}:")
    assert slack.called("users.lookupByEmail") == [{"email": "bob@example.com"}]
    assert slack.called("conversations.open")[0]["users"] == slack_id("bob")
    [message] = slack.in_channel(dm)
    assert buttons(message) == [(APPROVE, "req_1"), (REJECT, "req_1")]
    shown = text_of(message)
    for fact in ("Alice", "alice@example.com", "groups/oncall", "member", "1h", "incident 42", "oncall"):
        assert fact in shown
    assert "https://sluice.example.com/requests/req_1" in shown
    # The person's ids are cached: the second message costs one call.
    channel.send(notice())
    assert len(slack.called("users.lookupByEmail")) == 1
    assert len(slack.called("conversations.open")) == 1
    assert len(slack.in_channel(dm)) == 2


def test_a_post_to_the_flows_channel(slack: SlackStandIn, channel: SlackChannel) -> None:
    reference = channel.send(notice(to=None, destination=CHANNEL, role="channel"))
    assert reference is not None and reference.startswith(f"{CHANNEL_ID}:")
    [message] = slack.in_channel(CHANNEL_ID)
    assert buttons(message) == [(APPROVE, "req_1"), (REJECT, "req_1")]
    assert slack.called("users.lookupByEmail") == []


def test_a_decision_updates_every_earlier_message_and_removes_the_buttons(
    slack: SlackStandIn, channel: SlackChannel
) -> None:
    first = channel.send(notice())
    second = channel.send(notice("request.reminder"))
    assert first and second
    decided = dataclasses.replace(SUBJECT, state="approved", decided_by="Bob", decision_reason="go ahead")
    posts = len(slack.called("chat.postMessage"))
    channel.send(notice("request.approved", subject=decided, earlier=[first, second]))
    assert len(slack.called("chat.postMessage")) == posts  # updated, not posted again
    for message in slack.in_channel(f"D{slack_id('bob')}"):
        assert buttons(message) == []
        assert "approved" in message["text"] and "Bob" in message["text"] and "go ahead" in message["text"]
    # A message deleted meanwhile is left alone.
    slack.messages.clear()
    assert channel.send(notice("request.rejected", subject=decided, earlier=[first])) == first


def test_the_requester_gets_a_new_message_for_each_change(slack: SlackStandIn, channel: SlackChannel) -> None:
    told = notice("request.approved", to="alice", role="requester", earlier=["D1:1.0"])
    told = dataclasses.replace(told, subject=dataclasses.replace(SUBJECT, decided_by="Bob", state="approved"))
    assert channel.send(told)
    [message] = slack.in_channel(f"D{slack_id('alice')}")
    assert message["text"].startswith("Your request was *approved* by Bob")


def test_ending_soon_carries_an_extend_button(slack: SlackStandIn, channel: SlackChannel) -> None:
    ending = dataclasses.replace(
        SUBJECT, grant_id="grt_9", state="active", ends_at=datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    )
    channel.send(notice("grant.ending_soon", to="alice", role="requester", subject=ending))
    [message] = slack.in_channel(f"D{slack_id('alice')}")
    assert buttons(message) == [(EXTEND, "grt_9")]
    assert "2026-01-05 10:00 UTC" in message["text"]


def test_hostile_names_and_reasons_are_shown_not_obeyed(slack: SlackStandIn, channel: SlackChannel) -> None:
    hostile = dataclasses.replace(
        SUBJECT,
        requester_name="<!channel> *boss* <https://evil.example|click>",
        reason="`rm -rf` & <@U123> " + "x" * 5000,
        resources=[f"groups/<!here>{i}" + "y" * 900 for i in range(20)],
        resource_count=5000,
    )
    channel.send(notice(subject=hostile))
    [message] = slack.in_channel(f"D{slack_id('bob')}")  # the stand-in accepted it: within every limit
    shown = text_of(message) + message["text"]
    for smuggled in ("<!channel>", "<!here>", "<https://evil", "<@U123>", "*boss*", "`rm"):
        assert smuggled not in shown
    assert "&lt;!channel&gt;" in shown
    [resources] = [
        b["text"]["text"] for b in message["blocks"] if "Resources" in b.get("text", {}).get("text", "")
    ]
    listed = resources.count("• ")
    assert 1 <= listed <= 20 and f"… and {5000 - listed} more" in resources  # every one counted
    check_blocks(message["blocks"], 50)
    assert escape("a<b>&c") == "a&lt;b&gt;&amp;c"


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (200, "invalid_auth", False),
        (200, "channel_not_found", False),
        (429, "ratelimited", True),
        (500, "internal_error", True),
        (503, "service_unavailable", True),
    ],
)
def test_slack_errors_say_whether_to_try_again(
    slack: SlackStandIn, channel: SlackChannel, status: int, error: str, retryable: bool
) -> None:
    slack.fail_next("chat.postMessage", status, error)
    with pytest.raises(ChannelError) as caught:
        channel.send(notice())
    assert caught.value.retryable is retryable
    assert error in str(caught.value)


def test_unknown_people_and_bad_tokens_are_not_retried(slack: SlackStandIn, channel: SlackChannel) -> None:
    with pytest.raises(ChannelError) as caught:
        channel.send(notice(to="nobody"))
    assert caught.value.retryable is False
    wrong = SlackChannel(SlackSettings(bot_token="xoxb-wrong", api_url=slack.api_url).client())
    with pytest.raises(ChannelError) as caught:
        wrong.send(notice())
    assert caught.value.retryable is False and "invalid_auth" in str(caught.value)


def test_an_unreachable_slack_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = SlackChannel(SlackSettings(bot_token="xoxb-x", api_url=f"http://127.0.0.1:{port}/api/").client())
    with pytest.raises(ChannelError) as caught:
        dead.send(notice())
    assert caught.value.retryable is True


def test_an_ended_grant_says_why(slack: SlackStandIn, channel: SlackChannel) -> None:
    ended = dataclasses.replace(SUBJECT, grant_id="grt_9", state="revoked")
    channel.send(notice("grant.revoked", to="alice", role="requester", subject=ended, reason="<!here> done"))
    channel.send(notice("grant.expired", to="alice", role="requester", subject=ended))
    said = [m["text"] for m in slack.in_channel(f"D{slack_id('alice')}")]
    assert said == ["Your access has *ended* (&lt;!here&gt; done)", "Your access has *ended* (expired)"]


GLASS = dataclasses.replace(SUBJECT, state="active", decided_by="Alice", break_glass=True)


def test_break_glass_carries_a_review_button_until_reviewed(
    slack: SlackStandIn, channel: SlackChannel
) -> None:
    first = channel.send(notice("request.break_glass", subject=GLASS))
    [message] = slack.in_channel(f"D{slack_id('bob')}")
    assert buttons(message) == [(REVIEW, "req_1")]
    assert message["text"] == "*Alice* used break-glass access"
    reviewed = dataclasses.replace(
        GLASS, reviewed_by="<!here> Carol", review_outcome="revoke", review_reason="*no* case " + "x" * 5000
    )
    assert channel.send(notice("request.break_glass_reviewed", subject=reviewed, earlier=[first])) == first
    [updated] = slack.in_channel(f"D{slack_id('bob')}")  # the stand-in took it: within every limit
    assert buttons(updated) == []
    assert updated["text"].startswith(
        "Break-glass access of *Alice* was *reviewed* by &lt;!here&gt; Carol: access ended: \u200b*\u200bno"
    )
    # Sent late, after its review: no button to press, and it says how it was reviewed.
    channel.send(notice("request.break_glass", to="carol", subject=reviewed))
    [late] = slack.in_channel(f"D{slack_id('carol')}")
    assert buttons(late) == [] and "This request was *reviewed* by" in text_of(late)
    # The requester is told in a message of their own.
    channel.send(notice("request.break_glass_reviewed", to="alice", role="requester", subject=reviewed))
    [mine] = slack.in_channel(f"D{slack_id('alice')}")
    assert mine["text"].startswith("Your break-glass access was *reviewed*")


def test_the_review_form_stays_within_block_kits_limits() -> None:
    form = review_modal("req_1" * 1000, "Alice took member on " + "groups/x" * 1000)
    check_view(form)
    assert len(form["private_metadata"]) <= 3000 and form["blocks"][0]["text"]["type"] == "plain_text"
