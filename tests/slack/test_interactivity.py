"""What Slack posts to Sluice: only requests signed with the signing secret, within five minutes and
never seen before are read; the Slack user is matched to an active person by email; decisions go
through the same use cases and the same authorisation as the API."""

from __future__ import annotations

import dataclasses
import json

from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.domain.flows import FlowSpec
from sluice.services.notify.slack_blocks import APPROVE, REJECT, REJECT_VIEW, REQUEST_VIEW
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow, Identity
from sluice.store.types import new_id
from tests.api.conftest import Api, build_runtime, email, problem
from tests.slack.conftest import SlackSends, slack_id, slack_settings
from tests.slack_standin import SlackStandIn, interaction_body


def status_of(api: Api, request_id: str) -> dict:
    return api.get("alice", f"/requests/{request_id}").json()


def ephemerals(slack: SlackStandIn, who: str) -> list[str]:
    return [c["text"] for c in slack.called("chat.postEphemeral") if c["user"] == slack_id(who)]


def test_a_signed_click_approves(slack_api: Api, sends: SlackSends, slack: SlackStandIn) -> None:
    asked = slack_api.ask("alice")
    response = sends.click("bob", APPROVE, asked["id"])
    assert response.status_code == 200, response.text
    shown = status_of(slack_api, asked["id"])
    assert shown["status"] == "approved" and shown["decided_by"] == email("bob")
    assert ephemerals(slack, "bob") == [f"You approved request {asked['id']}; it is now approved."]
    audit = slack_api.get("root", "/audit", subject=asked["id"], action="request.approved").json()
    assert [e["actor"] for e in audit["items"]] == [email("bob")]


def test_badly_signed_stale_and_replayed_requests_are_refused(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn
) -> None:
    asked = slack_api.ask("alice")
    payload = {
        "type": "block_actions",
        "user": {"id": slack_id("bob")},
        "actions": [{"action_id": APPROVE, "value": asked["id"]}],
    }
    problem(sends.interaction(payload, secret="not-the-secret"), 401)
    problem(sends.interaction(payload, age=301), 401)  # older than five minutes
    problem(sends.interaction(payload, age=-301), 401)  # from too far in the future
    body, headers = interaction_body(payload, timestamp=sends.stamp())
    problem(slack_api.client.post("/slack/interactivity", content=body), 401)  # no signature at all
    problem(
        slack_api.client.post(
            "/slack/interactivity", content=body, headers=headers | {"X-Slack-Request-Timestamp": "soon"}
        ),
        401,
    )
    problem(slack_api.client.post("/slack/interactivity", content=body + b"&x=1", headers=headers), 401)
    assert status_of(slack_api, asked["id"])["status"] == "pending"  # nothing above did anything
    assert slack.called("users.info") == []

    # The genuine request once; the very same bytes again are a replay, refused.
    assert slack_api.client.post("/slack/interactivity", content=body, headers=headers).status_code == 200
    replayed = problem(slack_api.client.post("/slack/interactivity", content=body, headers=headers), 401)
    assert "replay" in replayed["detail"]
    assert len(slack.called("users.info")) == 1


def test_a_replay_is_refused_by_another_server_of_the_store(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn, tmp_path
) -> None:
    url = slack_api.runtime.engine.url.render_as_string(hide_password=False)
    other = build_runtime(url, tmp_path, slack_api.clock, new_store=False)
    other.settings = dataclasses.replace(other.settings, slack=slack_settings(slack))
    asked = slack_api.ask("alice")
    payload = {
        "type": "block_actions",
        "user": {"id": slack_id("bob")},
        "actions": [{"action_id": APPROVE, "value": asked["id"]}],
    }
    body, headers = interaction_body(payload, timestamp=sends.stamp())
    assert slack_api.client.post("/slack/interactivity", content=body, headers=headers).status_code == 200
    with TestClient(create_app(other)) as second:
        problem(second.post("/slack/interactivity", content=body, headers=headers), 401)
    other.engine.dispose()


def test_people_sluice_does_not_know_are_told_politely_and_nothing_happens(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn
) -> None:
    asked = slack_api.ask("alice")
    slack.add_user("UEVE", "eve@example.com")
    payload = {
        "type": "block_actions",
        "user": {"id": "UEVE"},
        "channel": {"id": "DUEVE"},
        "actions": [{"action_id": APPROVE, "value": asked["id"]}],
    }
    assert sends.interaction(payload).status_code == 200
    with transaction(slack_api.runtime.factory) as session:
        carol = session.query(Identity).filter_by(email=email("carol")).one()
        carol.active = False
    assert sends.click("carol", APPROVE, asked["id"]).status_code == 200
    assert status_of(slack_api, asked["id"])["status"] == "pending"
    told = [c["text"] for c in slack.called("chat.postEphemeral")]
    assert len(told) == 2 and all("Sluice does not know you" in t for t in told)


def test_only_approvers_decide_and_never_on_their_own_request(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn
) -> None:
    asked = slack_api.ask("alice")
    sends.click("dave", APPROVE, asked["id"])  # an engineer, not an approver of the flow
    sends.click("alice", APPROVE, asked["id"])  # the requester
    assert status_of(slack_api, asked["id"])["status"] == "pending"
    assert all(t.startswith("Sluice could not do that") for t in ephemerals(slack, "dave"))
    assert ephemerals(slack, "alice") and ephemerals(slack, "alice")[0].startswith("Sluice could not do that")

    # Leads ask and leads approve: Bob is an approver of the flow, but not of his own request.
    spec = FlowSpec.model_validate(
        {
            "name": "leads-dba",
            "requesters": [{"group": "leads"}],
            "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
            "approvers": [{"group": "leads"}],
            "max_duration": "4h",
        }
    )
    now = slack_api.clock()
    with transaction(slack_api.runtime.factory) as session:
        session.add(
            AccessFlow(
                id=new_id("flw"),
                name=spec.name,
                spec=spec.model_dump(mode="json"),
                created_at=now,
                updated_at=now,
            )
        )
    own = slack_api.ask("bob", group="dba", flow="leads-dba")
    sends.click("bob", APPROVE, own["id"])
    assert slack_api.get("bob", f"/requests/{own['id']}").json()["status"] == "pending"
    assert "own request" in ephemerals(slack, "bob")[-1]
    sends.click("carol", APPROVE, own["id"])
    assert slack_api.get("bob", f"/requests/{own['id']}").json()["status"] == "approved"


def test_reject_asks_for_a_reason_in_a_modal(slack_api: Api, sends: SlackSends, slack: SlackStandIn) -> None:
    asked = slack_api.ask("alice")
    assert sends.click("bob", REJECT, asked["id"]).status_code == 200
    [opened] = slack.called("views.open")
    assert opened["trigger_id"] == "trigger-bob"
    assert opened["view"]["callback_id"] == REJECT_VIEW and opened["view"]["private_metadata"] == asked["id"]
    assert status_of(slack_api, asked["id"])["status"] == "pending"

    empty = sends.submit_view("bob", REJECT_VIEW, {"reason": {"reason": {"value": "  "}}}, asked["id"])
    assert empty.json()["response_action"] == "errors" and "reason" in empty.json()["errors"]
    hostile = sends.submit_view("bob", REJECT_VIEW, {"reason": {"reason": {"value": "a\x00b"}}}, asked["id"])
    assert hostile.json()["response_action"] == "errors"
    done = sends.submit_view(
        "bob", REJECT_VIEW, {"reason": {"reason": {"value": "not during the freeze"}}}, asked["id"]
    )
    assert done.status_code == 200 and done.content == b""
    shown = status_of(slack_api, asked["id"])
    assert shown["status"] == "rejected" and shown["decision_reason"] == "not during the freeze"
    # Rejecting through a forged modal is held to the same rules: Dave is no approver.
    again = slack_api.ask("alice", group="dba")
    forged = sends.submit_view("dave", REJECT_VIEW, {"reason": {"reason": {"value": "no"}}}, again["id"])
    assert forged.json()["response_action"] == "errors"
    assert status_of(slack_api, again["id"])["status"] == "pending"


def test_the_slash_command_opens_a_request_form_fed_by_requestable(
    slack_api: Api, sends: SlackSends, slack: SlackStandIn
) -> None:
    command = {"command": "/sluice", "text": "", "user_id": slack_id("alice"), "trigger_id": "trigger-cmd"}
    response = sends.post("/slack/commands", command)
    assert response.status_code == 200 and response.content == b""
    [opened] = slack.called("views.open")
    assert opened["view"]["callback_id"] == REQUEST_VIEW

    search = {
        "type": "block_suggestion",
        "user": {"id": slack_id("alice")},
        "action_id": "resource",
        "value": "on",
    }
    found = sends.post("/slack/options", {"payload": json.dumps(search)}).json()["options"]
    labels = [o["text"]["text"] for o in found]
    assert labels == ["groups/oncall · member"]
    everything = sends.post("/slack/options", {"payload": json.dumps(search | {"value": ""})}).json()[
        "options"
    ]
    assert {o["text"]["text"] for o in everything} == {"groups/oncall · member", "groups/dba · member"}
    # Bob may request nothing: no flow names leads as requesters.
    bobs = sends.post("/slack/options", {"payload": json.dumps(search | {"user": {"id": slack_id("bob")}})})
    assert bobs.json()["options"] == []

    values = {
        "resource": {"resource": {"selected_option": {"value": found[0]["value"]}}},
        "duration": {"duration": {"value": "2h"}},
        "reason": {"reason": {"value": "incident 7"}},
    }
    bad = sends.submit_view("alice", REQUEST_VIEW, values | {"duration": {"duration": {"value": "forever"}}})
    assert bad.json()["response_action"] == "errors" and "duration" in bad.json()["errors"]
    too_long = sends.submit_view("alice", REQUEST_VIEW, values | {"duration": {"duration": {"value": "9h"}}})
    assert too_long.json()["response_action"] == "errors"
    assert sends.submit_view("alice", REQUEST_VIEW, values).status_code == 200
    [mine] = slack_api.get("alice", "/requests").json()["items"]
    assert (
        mine["reason"] == "incident 7"
        and mine["duration"] == "2h"
        and mine["grants"][0]["resource"] == "groups/oncall"
    )

    slack.add_user("UEVE", "eve@example.com")
    stranger = sends.post("/slack/commands", command | {"user_id": "UEVE"})
    assert "Sluice does not know you" in stranger.json()["text"]


def test_without_a_signing_secret_nothing_is_read(slack_api: Api, sends: SlackSends) -> None:
    settings = slack_api.runtime.settings
    assert settings.slack is not None
    slack_api.runtime.settings = dataclasses.replace(
        settings, slack=dataclasses.replace(settings.slack, signing_secret=None)
    )
    problem(sends.post("/slack/commands", {"command": "/sluice"}), 404)
