"""The webhooks API (admin): webhooks with their health, their deliveries by state and page, and a
test ping that a worker sends to that webhook only, signed per Standard Webhooks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sluice.domain.roles import Role
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Webhook
from tests.api.conftest import PEOPLE, Api, email, problem
from tests.webhook_receiver import SIGNING_KEY, SIGNING_KEY_ENV, Receiver, add_webhook


def _hooks(api: Api, receiver: Receiver) -> None:
    add_webhook(api.runtime.factory, "everything", receiver.url("/all"))
    add_webhook(api.runtime.factory, "grants", receiver.url("/grants"), topics=["grant.*"])


def _granted(api: Api) -> None:
    asked = api.ask("alice")
    assert api.post("bob", f"/requests/{asked['id']}/approve").status_code == 200
    api.work()
    api.work()


def test_webhooks_are_listed_with_their_health_and_never_a_secret(api: Api, receiver: Receiver) -> None:
    api.work()  # what seeding wrote is handled before any webhook exists
    _hooks(api, receiver)
    receiver.statuses[:] = [500]  # the first delivery to /all fails; the webhook rests
    _granted(api)
    listed = api.get("root", "/webhooks")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2 and [w["name"] for w in body["items"]] == ["everything", "grants"]
    everything, grants = body["items"]
    assert everything["host"] == "127.0.0.1" and everything["topics"] == ["*"]
    assert everything["secret_env"] == SIGNING_KEY_ENV and SIGNING_KEY not in listed.text
    assert everything["failures"] == 1 and everything["resting_until"] is not None
    assert everything["last_error"] == f"HTTP 500 from {receiver.url('/all')}"
    assert everything["deliveries"]["pending"] >= 1 and everything["deliveries"]["given_up"] == 0
    assert grants["failures"] == 0 and grants["resting_until"] is None
    assert grants["deliveries"] == {"pending": 0, "delivered": 1, "given_up": 0}
    assert [w["name"] for w in api.get("root", "/webhooks", limit=1, offset=1).json()["items"]] == ["grants"]


def test_deliveries_page_newest_first_and_filter_by_state(api: Api, receiver: Receiver) -> None:
    api.work()
    _hooks(api, receiver)
    _granted(api)
    everything = api.get("root", "/webhooks/everything/deliveries").json()
    types = [d["type"] for d in everything["items"]]
    assert everything["total"] == len(types) >= 3
    assert {"request.created", "request.approved", "grant.activated"} <= set(types)
    created = [d["created_at"] for d in everything["items"]]
    assert created == sorted(created, reverse=True)
    first = everything["items"][-1]
    assert first["state"] == "delivered" and first["attempts"] == 1 and first["id"].startswith("whd_")
    assert (first["last_status"], first["last_error"], first["next_attempt_at"]) == (200, None, None)
    received_ids = {r.delivery_id for r in receiver.at("/all")}
    assert {d["id"] for d in everything["items"]} == received_ids
    with transaction(api.runtime.factory) as session:
        event = session.get(AuditEvent, first["event_id"])
        assert event is not None and event.action == first["type"]
    paged = api.get("root", "/webhooks/everything/deliveries", limit=1, offset=1).json()
    assert paged["total"] == everything["total"] and paged["items"] == everything["items"][1:2]
    assert api.get("root", "/webhooks/everything/deliveries", state="pending").json() == {
        "items": [],
        "total": 0,
    }
    assert api.get("root", "/webhooks/everything/deliveries", state="delivered").json() == everything
    one = api.get("root", f"/webhooks/everything/deliveries/{first['id']}")
    assert one.json() == first
    problem(api.get("root", f"/webhooks/grants/deliveries/{first['id']}"), 404)  # another webhook's
    problem(api.get("root", "/webhooks/nosuch/deliveries"), 404)
    problem(api.get("root", "/webhooks/everything/deliveries", state="lost"), 422)


def test_a_given_up_delivery_shows_as_given_up(api: Api, receiver: Receiver) -> None:
    api.work()
    add_webhook(api.runtime.factory, "dead", receiver.url(), topics=["request.created"])
    receiver.statuses[:] = [503] * 50
    api.ask("alice")
    for _ in range(25):
        api.work()
        api.clock.advance(minutes=15)
    given_up = api.get("root", "/webhooks/dead/deliveries", state="given_up").json()
    assert given_up["total"] == 1
    (row,) = given_up["items"]
    assert row["state"] == "given_up" and row["gave_up_at"] and row["next_attempt_at"] is None
    assert row["last_status"] == 503 and row["last_error"] == f"HTTP 503 from {receiver.url()}"
    assert api.get("root", "/webhooks/dead/deliveries", state="delivered").json()["total"] == 0


def test_a_test_ping_goes_to_that_webhook_only_signed_and_wakes_a_resting_one(
    api: Api, receiver: Receiver
) -> None:
    api.work()
    _hooks(api, receiver)
    with transaction(api.runtime.factory) as session:
        hook = session.scalars(select(Webhook).where(Webhook.name == "everything")).one()
        hook.failures, hook.retry_at = 3, api.clock() + timedelta(minutes=10)  # resting after failures
    queued = api.post("root", "/webhooks/everything/test")
    assert queued.status_code == 202, queued.text
    ping = queued.json()
    assert (ping["type"], ping["state"], ping["attempts"], ping["webhook"]) == (
        "webhook.test",
        "pending",
        0,
        "everything",
    )
    api.work()
    (received,) = receiver.at("/all")
    assert received.rejected is None and received.signed_with(SIGNING_KEY)
    assert received.delivery_id == ping["id"] and received.event == "webhook.test"
    assert received.data["subject"] == {"type": "webhook", "id": "everything"}
    assert received.data["actor"] == email("root") and received.data["details"]["name"] == "everything"
    assert receiver.at("/grants") == []  # its topics hold webhook.test ("grant.*" does not)
    done = api.get("root", f"/webhooks/everything/deliveries/{ping['id']}").json()
    assert (done["state"], done["attempts"], done["last_status"]) == ("delivered", 1, 200)
    listed = {w["name"]: w for w in api.get("root", "/webhooks").json()["items"]}
    assert (listed["everything"]["failures"], listed["everything"]["resting_until"]) == (0, None)
    problem(api.post("root", "/webhooks/nosuch/test"), 404)


@pytest.fixture
def role_tokens(api: Api) -> dict[str, str]:
    with transaction(api.runtime.factory) as session:
        return {
            role.value: create_token(session, email=email("dave"), role=role, actor="test", now=api.clock())
            for role in Role
        }


def test_only_admins_reach_webhooks_whoever_asks(
    api: Api, receiver: Receiver, role_tokens: dict[str, str]
) -> None:
    _hooks(api, receiver)
    ping = api.post("root", "/webhooks/everything/test").json()
    calls = [
        ("GET", "/webhooks"),
        ("GET", "/webhooks/everything/deliveries"),
        ("GET", f"/webhooks/everything/deliveries/{ping['id']}"),
        ("POST", "/webhooks/everything/test"),
    ]
    callers = {who: api.tokens[who] for who in PEOPLE} | {f"role:{r}": t for r, t in role_tokens.items()}
    admins = {"root", "role:admin"}
    for who, token in callers.items():
        for method, path in calls:
            response = api.client.request(
                method, "/api/v1" + path, headers={"Authorization": f"Bearer {token}"}
            )
            if who in admins:
                assert response.status_code in (200, 202), (who, method, path, response.text)
            else:
                problem(response, 403)
    for method, path in calls:
        assert api.client.request(method, "/api/v1" + path).status_code == 401


def test_counts_and_states_agree_with_the_receiver_on_every_store(
    any_store_api: Api, receiver: Receiver
) -> None:
    """The health counts and the state filter are SQL (`webhook_admin._in_state`); on SQLite and
    PostgreSQL alike they agree with what the receiver verified and what it refused."""
    api = any_store_api
    api.work()
    _hooks(api, receiver)
    receiver.statuses[:] = [502]  # the first delivery (to /all) is refused, then all is well
    _granted(api)
    listed = {w["name"]: w for w in api.get("root", "/webhooks").json()["items"]}
    states = ("pending", "delivered", "given_up")
    for name, path in (("everything", "/all"), ("grants", "/grants")):
        counts = listed[name]["deliveries"]
        by_state = {s: api.get("root", f"/webhooks/{name}/deliveries", state=s).json() for s in states}
        assert {s: page["total"] for s, page in by_state.items()} == counts, name
        accepted = {r.delivery_id for r in receiver.at(path) if r.signed_with(SIGNING_KEY)}
        delivered = {d["id"] for d in by_state["delivered"]["items"]}
        assert delivered <= accepted and counts["delivered"] == len(delivered)
    pending = api.get("root", "/webhooks/everything/deliveries", state="pending").json()["items"]
    (refused,) = [d for d in pending if d["attempts"]]  # the rest waited behind it, never sent
    assert (refused["last_status"], refused["last_error"]) == (502, f"HTTP 502 from {receiver.url('/all')}")
