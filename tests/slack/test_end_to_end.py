"""A request driven end to end through Slack: the manager gets a direct message and the flow's channel
a post, the manager approves with a signed click, the grant becomes active, every message about the
request is updated to say who decided, the requester is told of each change, and the warning before
the end carries an Extend button that works."""

from __future__ import annotations

from datetime import datetime

import pytest

from sluice.domain.flows import FlowSpec
from sluice.services.notify.slack_blocks import APPROVE, EXTEND, REJECT
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, Identity
from sluice.store.types import new_id
from sluice.worker.loop import Worker
from tests.api.conftest import Api, email
from tests.slack.conftest import (
    CHANNEL,
    CHANNEL_ID,
    PORTAL,
    SlackSends,
    buttons,
    settle,
    slack_id,
    slack_worker,
)
from tests.slack_standin import SlackStandIn

FLOW = {
    "name": "oncall-by-manager",
    "requesters": [{"group": "engineers"}],
    "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
    "approvers": [{"manager": True}],
    "max_duration": "1h",
    "extensions": {"max_count": 1, "length": "30m", "ceiling": "4h"},
    "notify": {"destinations": [f"slack:{CHANNEL}"]},
}


@pytest.fixture
def worker(slack_api: Api, slack: SlackStandIn) -> Worker:
    """The worker with the Slack channel, and the flow: Alice's manager approves."""
    worker = slack_worker(slack_api, slack)
    now = slack_api.clock()
    with transaction(slack_api.runtime.factory) as session:
        alice = session.query(Identity).filter_by(email=email("alice")).one()
        alice.manager_email = email("bob")
        spec = FlowSpec.model_validate(FLOW)
        session.add(
            AccessFlow(
                id=new_id("flw"),
                name=spec.name,
                spec=spec.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
        )
    worker.run_once()  # what the seed wrote is behind us
    return worker


def test_a_request_through_slack(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, worker: Worker
) -> None:
    asked = slack_api.ask("alice", duration="30m", flow=FLOW["name"], reason="incident <!here> 42")
    assert asked["approvers"] == [email("bob")]
    settle(worker)

    # The manager's direct message and the channel's post, each with the buttons.
    [to_bob] = slack.in_channel(f"D{slack_id('bob')}")
    [posted] = slack.in_channel(CHANNEL_ID)
    for message in (to_bob, posted):
        assert buttons(message) == [APPROVE, REJECT]
        assert "Alice" in message["text"] and "asks for access" in message["text"]
        shown = str(message["blocks"])
        assert "groups/oncall" in shown and "30m" in shown and "incident &lt;!here&gt; 42" in shown
        assert f"{PORTAL}/requests/{asked['id']}" in shown
    assert slack.in_channel(f"D{slack_id('carol')}") == []  # not Alice's manager: not asked

    # Bob approves with a click Slack signs.
    assert sends.click("bob", APPROVE, asked["id"]).status_code == 200
    settle(worker)
    [grant] = slack_api.get("alice", "/access").json()["items"]
    assert grant["state"] == "active"

    # Every message about the request now says who decided, and has no buttons left.
    for message in (slack.in_channel(f"D{slack_id('bob')}")[0], slack.in_channel(CHANNEL_ID)[0]):
        assert buttons(message) == []
        assert "approved" in message["text"] and "Bob" in message["text"]
    assert len(slack.in_channel(CHANNEL_ID)) == 1 and len(slack.in_channel(f"D{slack_id('bob')}")) == 1

    # The requester was told of each change.
    told = [m["text"] for m in slack.in_channel(f"D{slack_id('alice')}")]
    assert any(t.startswith("Your request was *approved* by Bob") for t in told)
    assert any(t.startswith("Your access is *active*") for t in told)

    # The warning before the end, with an Extend button that works.
    ends_at = datetime.fromisoformat(grant["ends_at"])
    slack_api.clock.now = ends_at - (ends_at - slack_api.clock()) / 3  # 10 minutes before the end
    settle(worker, 2)
    warning = slack.in_channel(f"D{slack_id('alice')}")[-1]
    assert warning["text"].startswith("Your access *ends soon*")
    assert buttons(warning) == [EXTEND]
    [extend] = [e for b in warning["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert sends.click("alice", EXTEND, extend["value"]).status_code == 200
    [extended] = slack_api.get("alice", "/access").json()["items"]
    assert (datetime.fromisoformat(extended["ends_at"]) - ends_at).total_seconds() == 30 * 60
    said = [c["text"] for c in slack.called("chat.postEphemeral") if c["user"] == slack_id("alice")]
    assert said and said[-1].startswith("Extended: your access now ends at")


def test_a_decision_made_elsewhere_updates_the_slack_messages(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, worker: Worker
) -> None:
    asked = slack_api.ask("alice", duration="30m", flow=FLOW["name"])
    settle(worker)
    rejected = slack_api.post("bob", f"/requests/{asked['id']}/reject", {"reason": "not now"})
    assert rejected.status_code == 200, rejected.text
    settle(worker)
    for message in (slack.in_channel(f"D{slack_id('bob')}")[0], slack.in_channel(CHANNEL_ID)[0]):
        assert buttons(message) == []
        assert "*rejected* by Bob: not now" in message["text"]
    told = [m["text"] for m in slack.in_channel(f"D{slack_id('alice')}")]
    assert told == ["Your request was *rejected* by Bob: not now"]
    # A click on a button of a message Slack had not updated yet is refused: the request is decided.
    sends.click("bob", APPROVE, asked["id"])
    said = [c["text"] for c in slack.called("chat.postEphemeral") if c["user"] == slack_id("bob")]
    assert said[-1].startswith("Sluice could not do that") and "rejected" in said[-1]
