"""`sluice webhooks list|deliveries|test` against a real API (in-process) and a real HTTP receiver that
checks every delivery's Standard Webhooks signature with the `standardwebhooks` library. The worker
runs where the command waits, as a running worker would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from standardwebhooks.webhooks import Webhook as StandardWebhook
from typer.testing import CliRunner, Result

from sluice.cli import output, webhook_commands
from sluice.cli.main import app
from sluice.services.audit.webhook_signing import sign, signing_key
from tests.api.conftest import Api
from tests.cli.conftest import api_in_process, assert_clean_failure
from tests.conftest import Clock
from tests.webhook_receiver import SIGNING_KEY, SIGNING_KEY_ENV, Receiver, add_webhook


@pytest.fixture
def api(tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setattr(output, "console", Console(width=300, highlight=False, soft_wrap=False))
    yield from api_in_process(tmp_path, clock, monkeypatch, webhook_commands)


@pytest.fixture
def hooks(api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """Two webhooks at the receiver, and a worker pass wherever the command waits."""
    api.work()  # what seeding wrote is handled before any webhook exists
    add_webhook(api.runtime.factory, "audit-sink", receiver.url("/sink"))
    add_webhook(api.runtime.factory, "grants", receiver.url("/grants"), topics=["grant.*"])
    monkeypatch.setattr(webhook_commands, "_pause", api.work)
    return receiver


def _run(api: Api, *args: str, who: str = "root") -> Result:
    return CliRunner().invoke(app, ["webhooks", *args, "--token", api.tokens[who]])


def test_test_sends_a_signed_event_and_reports_the_receivers_answer(api: Api, hooks: Receiver) -> None:
    result = _run(api, "test", "audit-sink")
    assert result.exit_code == 0, result.output
    (received,) = hooks.at("/sink")
    assert received.rejected is None and received.signed_with(SIGNING_KEY)
    assert received.event == "webhook.test" and received.data["subject"]["id"] == "audit-sink"
    assert result.stdout == (
        f"audit-sink: webhook.test {received.delivery_id} delivered; the receiver answered HTTP 200\n"
    )
    assert hooks.at("/grants") == []


def test_a_receiver_that_refuses_fails_the_test_in_one_line(api: Api, hooks: Receiver) -> None:
    hooks.statuses[:] = [500]
    refused = _run(api, "test", "audit-sink")
    assert_clean_failure(refused)
    (received,) = hooks.at("/sink")
    first = refused.stderr.splitlines()[0]
    assert (
        first
        == f"error: audit-sink: webhook.test {received.delivery_id} failed: the receiver answered HTTP 500"
    )
    assert "tries again at" in refused.stderr
    as_json = _run(api, "test", "audit-sink", "--json")  # the webhook's rest ends: sent at once
    assert as_json.exit_code == 0, as_json.output
    delivery = json.loads(as_json.stdout)
    assert (delivery["state"], delivery["attempts"], delivery["last_status"]) == ("delivered", 1, 200)


def test_without_a_worker_the_test_waits_then_says_so(
    api: Api, hooks: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhook_commands, "_pause", lambda: None)
    queued = _run(api, "test", "grants", "--wait", "0")
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.startswith("grants: webhook.test whd_") and " queued; " in queued.stdout
    late = _run(api, "test", "grants", "--wait", "0.05")
    assert_clean_failure(late)
    assert "was not sent within 0.05s" in late.stderr and "is a worker running" in late.stderr
    assert hooks.received == []
    api.work()
    assert len(hooks.at("/grants")) == 2 and all(r.signed_with(SIGNING_KEY) for r in hooks.at("/grants"))


def test_list_and_deliveries_show_health_and_never_a_secret(api: Api, hooks: Receiver) -> None:
    hooks.statuses[:] = [503]
    assert _run(api, "test", "grants").exit_code == 1
    table = _run(api, "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    sink = next(line for line in lines if "audit-sink" in line)
    grants = next(line for line in lines if "grants" in line and "audit-sink" not in line)
    assert hooks.url("/sink") in sink and "HTTP 503" in grants
    listed = _run(api, "list", "--json")
    body = json.loads(listed.stdout)
    assert [w["name"] for w in body["items"]] == ["audit-sink", "grants"] and body["total"] == 2
    assert body["items"][1]["failures"] == 1 and body["items"][1]["secret_env"] == SIGNING_KEY_ENV
    assert SIGNING_KEY not in table.stdout + listed.stdout
    deliveries = _run(api, "deliveries", "grants", "--state", "pending", "--json")
    (pending,) = json.loads(deliveries.stdout)["items"]
    assert (pending["type"], pending["attempts"], pending["last_status"]) == ("webhook.test", 1, 503)
    shown = _run(api, "deliveries", "grants")
    assert pending["id"] in shown.stdout and "503" in shown.stdout
    assert "no deliveries of grants match" in _run(api, "deliveries", "grants", "--state", "given_up").stderr


def test_bad_names_states_and_callers_fail_in_one_line(api: Api, hooks: Receiver) -> None:
    for args, who, words in [
        (("test", "nosuch"), "root", "no webhook 'nosuch'"),
        (("deliveries", "nosuch"), "root", "no webhook 'nosuch'"),
        (("deliveries", "grants", "--state", "lost"), "root", "query.state: Input should be"),
        (("test", "Not A Name"), "root", "is not lower-case letters, digits"),
        (("list",), "alice", "admin"),
        (("test", "grants"), "bob", "admin"),
    ]:
        result = _run(api, *args, who=who)
        assert_clean_failure(result)
        assert words in result.stderr.splitlines()[0], (args, result.stderr)
    assert hooks.received == []


def test_a_worker_without_the_secret_says_why_nothing_was_answered(
    api: Api, hooks: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SIGNING_KEY_ENV)
    failed = _run(api, "test", "audit-sink")
    assert_clean_failure(failed)
    assert f"failed: environment variable {SIGNING_KEY_ENV}" in failed.stderr.splitlines()[0]
    assert hooks.received == []  # nothing unsigned ever leaves
    (delivery,) = json.loads(_run(api, "deliveries", "audit-sink", "--json").stdout)["items"]
    assert (delivery["attempts"], delivery["last_status"]) == (1, None)


def test_secret_prints_a_fresh_standard_webhooks_secret() -> None:
    made = [CliRunner().invoke(app, ["webhooks", "secret"]) for _ in range(2)]
    secrets = [result.stdout.strip() for result in made]
    assert all(result.exit_code == 0 for result in made) and secrets[0] != secrets[1]
    for secret in secrets:
        assert secret.startswith("whsec_") and signing_key(secret, variable="X")  # usable by the worker
        headers = {"webhook-id": "whd_1", "webhook-timestamp": str(int(time.time()))}
        headers["webhook-signature"] = sign(
            signing_key(secret, variable="X"),
            message_id="whd_1",
            timestamp=int(headers["webhook-timestamp"]),
            body=b"{}",
        )
        assert StandardWebhook(secret).verify(b"{}", headers) == {}
