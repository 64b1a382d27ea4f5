"""The API with the Slack app configured against the Slack stand-in, the seeded people known to Slack
by their email, and a way to post to Sluice what Slack posts, signed as Slack signs it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sluice.services.notify.slack_channel import SlackChannel
from sluice.services.notify.slack_settings import SlackSettings
from sluice.worker.loop import Worker
from tests.api.conftest import PEOPLE, Api, email, make_api
from tests.conftest import Clock
from tests.slack_standin import BOT_TOKEN, SIGNING_SECRET, SlackStandIn, running_slack, signed

CHANNEL = "#db-access"
CHANNEL_ID = "C0DBACCESS"
PORTAL = "https://sluice.example.com"


def slack_id(who: str) -> str:
    return f"U{who.upper()}"


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with running_slack() as standin:
        for who in PEOPLE:
            standin.add_user(slack_id(who), email(who), name=who)
        standin.add_channel(CHANNEL, CHANNEL_ID)
        yield standin


def slack_settings(standin: SlackStandIn) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=standin.api_url)


@pytest.fixture
def slack_api(store_url: str, tmp_path: Path, clock: Clock, slack: SlackStandIn) -> Iterator[Api]:
    """The API on a SQLite file and on a fresh PostgreSQL database, its runtime holding the Slack
    settings (as `from_env` would)."""
    for api in make_api(store_url, tmp_path, clock):
        api.runtime.settings = dataclasses.replace(api.runtime.settings, slack=slack_settings(slack))
        yield api


def slack_worker(api: Api, standin: SlackStandIn) -> Worker:
    """The worker with the Slack channel, sending within its pass so a test sees each step."""
    runtime = api.runtime
    worker = Worker(
        runtime.factory,
        hub=runtime.hub,
        box=runtime.box,
        clock=api.clock,
        worker_id="slack-worker",
        sync_inventory=False,
        channels={"slack": SlackChannel(slack_settings(standin).client())},
        public_url=PORTAL,
    )
    worker.notifications.background = False
    return worker


def settle(worker: Worker, passes: int = 4) -> None:
    for _ in range(passes):
        worker.run_once()


def buttons(message: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


class SlackSends:
    """Posts to Sluice what Slack posts, signed with the app's signing secret at the test clock."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def stamp(self) -> int:
        return int(self.api.clock().timestamp())

    def post(
        self, path: str, fields: dict[str, str], *, secret: str = SIGNING_SECRET, age: int = 0
    ) -> httpx.Response:
        body, headers = signed(fields, timestamp=self.stamp() - age, secret=secret)
        return self.api.client.post(path, content=body, headers=headers)

    def interaction(self, payload: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.post("/slack/interactivity", {"payload": json.dumps(payload)}, **kwargs)

    def click(self, who: str, action_id: str, value: str, **kwargs: Any) -> httpx.Response:
        payload = {
            "type": "block_actions",
            "user": {"id": slack_id(who), "username": who},
            "trigger_id": f"trigger-{who}",
            "channel": {"id": f"D{slack_id(who)}"},
            "container": {"type": "message"},
            "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
        }
        return self.interaction(payload, **kwargs)

    def submit_view(
        self, who: str, callback_id: str, values: dict[str, Any], metadata: str = "", **kwargs: Any
    ) -> httpx.Response:
        payload = {
            "type": "view_submission",
            "user": {"id": slack_id(who)},
            "view": {
                "id": "V0001",
                "callback_id": callback_id,
                "private_metadata": metadata,
                "state": {"values": values},
            },
        }
        return self.interaction(payload, **kwargs)


@pytest.fixture
def sends(slack_api: Api) -> SlackSends:
    return SlackSends(slack_api)
