"""The Teams channel against a stand-in Workflows webhook on loopback that checks the Adaptive Card as
Teams would: a new request posts a card to the flow's Teams destination with what, who, why, how long
and a link; hostile text cannot become markdown; failures are retried or given up by their status."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.services.notify.channels import ChannelError, Notice, Subject
from sluice.services.notify.delivery import NotificationDuty
from sluice.services.notify.teams import TeamsChannel, card, destinations_from_env
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow
from tests.services.conftest import Store
from tests.teams_standin import card_problems, running_teams_standin


def notice(**changes: object) -> Notice:
    subject = Subject(
        request_id="req_1",
        grant_id=None,
        requester_name="Alice [click](https://evil.example) **now**",
        requester_email="alice@example.com",
        resources=["pg/prod/payments"],
        resource_count=1,
        permission="read",
        duration="2h",
        reason="incident _42_",
        flow="db-read",
        state="pending",
        decided_by=None,
        decision_reason=None,
        ends_at=None,
        break_glass=False,
        portal_url="https://sluice.example.com/requests/req_1",
    )
    made = Notice(
        notification_id="ntf_1",
        topic="request.created",
        event_id=7,
        channel="teams",
        recipient_email=None,
        recipient_identity_id=None,
        destination="db-team",
        role="channel",
        subject=subject,
        earlier=[],
    )
    return Notice(**{**made.__dict__, **changes})  # type: ignore[arg-type]


def test_the_card_is_one_teams_would_post_and_shows_text_literally() -> None:
    message = card(notice())
    assert card_problems(message) == []
    content = message["attachments"][0]["content"]
    headline = content["body"][0]["text"]
    assert headline.startswith(r"Alice \[click\]\(https://evil.example\) \*\*now\*\* asks for read")
    facts = {f["title"]: f["value"] for f in content["body"][1]["facts"]}
    assert facts["Reason"] == r"incident \_42\_" and facts["For"] == "2h"
    assert facts["Access"] == "read on pg/prod/payments" and facts["Requested by"].endswith(
        r"<alice@example.com\>"
    )
    assert content["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Review the request",
            "url": "https://sluice.example.com/requests/req_1",
        }
    ]
    assert (
        "actions"
        not in card(notice(subject=Subject(**{**notice().subject.__dict__, "portal_url": None})))[
            "attachments"
        ][0]["content"]
    )


def test_the_standin_refuses_what_teams_would() -> None:
    good = card(notice())
    callback = json.loads(json.dumps(good))
    callback["attachments"][0]["content"]["actions"] = [{"type": "Action.Submit", "title": "Approve"}]
    assert card_problems(callback) == ["actions[0] type 'Action.Submit'"]
    wrong = json.loads(json.dumps(good))
    wrong["attachments"][0]["contentType"] = "application/json"
    assert card_problems(wrong)
    unknown = json.loads(json.dumps(good))
    unknown["attachments"][0]["content"]["body"].append({"type": "Marquee"})
    assert card_problems(unknown) == ["body[2] has unknown type 'Marquee'"]


def test_a_post_is_accepted_and_errors_are_retryable_by_status() -> None:
    with running_teams_standin() as standin:
        channel = TeamsChannel({"db-team": standin.url()}, timeout_seconds=2)
        assert channel.send(notice()) is None
        assert len(standin.cards) == 1 and standin.refused == []
        standin.statuses[:] = [503, 429, 404]
        outcomes = []
        for _ in range(3):
            with pytest.raises(ChannelError) as raised:
                channel.send(notice())
            outcomes.append(raised.value.retryable)
        assert outcomes == [True, True, False]
        with pytest.raises(ChannelError, match="no Teams destination 'ops'") as unknown:
            channel.send(notice(destination="ops"))
        assert not unknown.value.retryable
        standin.hang_seconds = 1.5
        with pytest.raises(ChannelError, match="Timeout") as hung:
            TeamsChannel({"db-team": standin.url()}, timeout_seconds=0.3).send(notice())
        assert hung.value.retryable


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SLUICE_TEAMS_WEBHOOKS": "db team=URL"}, "write NAME=ENV_VAR"),
        ({"SLUICE_TEAMS_WEBHOOKS": "db=MISSING"}, "MISSING .* is not set"),
        ({"SLUICE_TEAMS_WEBHOOKS": "db=U", "U": "http://teams.example.com/x"}, "https://"),
        ({"SLUICE_TEAMS_WEBHOOKS": "db=U,db=U", "U": "https://x.example.com/"}, "twice"),
    ],
)
def test_destinations_that_cannot_work_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        destinations_from_env(env)


def test_destinations_from_the_environment() -> None:
    env = {
        "SLUICE_TEAMS_WEBHOOKS": "db-team=T1, ops=T2",
        "T1": "https://a.example.com/1",
        "T2": "https://b.example.com/2",
    }
    assert destinations_from_env(env) == {
        "db-team": "https://a.example.com/1",
        "ops": "https://b.example.com/2",
    }
    assert destinations_from_env({}) == {}


def test_a_new_request_and_its_decision_are_posted_to_the_flows_teams_destination(store: Store) -> None:
    with transaction(store.factory) as session:
        row = session.scalars(select(AccessFlow).where(AccessFlow.name == "oncall-by-manager")).one()
        row.spec = FlowSpec.model_validate(
            {**row.spec, "notify": {"destinations": ["teams:db-team"]}}
        ).model_dump(mode="json")
    with running_teams_standin() as standin:
        duty = NotificationDuty(
            store.factory,
            clock=store.clock,
            channels={"teams": TeamsChannel({"db-team": standin.url()})},
            public_url="https://sluice.example.com",
        )
        with transaction(store.factory) as session:
            request = submit_request(
                session,
                hub=store.hub,
                requester=store.identity(session, "alice@example.com"),
                units=[UnitAsked("groups/oncall", "member")],
                duration=timedelta(hours=2),
                reason="incident 7",
                now=store.clock(),
            )
            request_id = request.id
        assert duty.run() == 1
        with transaction(store.factory) as session:
            approve_request(
                session,
                request_id=request_id,
                approver=store.identity(session, "carol@example.com"),
                reason="ok",
                now=store.clock(),
            )
        assert duty.run() == 1
    assert standin.refused == []
    assert standin.texts() == [
        "Alice asks for member on groups/oncall",
        "Alice's request for member on groups/oncall was approved by Carol",
    ]
    first = standin.cards[0]["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in first["body"][1]["facts"]}
    assert (facts["For"], facts["Reason"], facts["State"]) == ("2h", "incident 7", "pending")
    assert first["actions"][0]["url"] == f"https://sluice.example.com/requests/{request_id}"
