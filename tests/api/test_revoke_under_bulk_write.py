"""A revoke never waits behind an admin's bulk tag write: while the largest batch the API takes
(MAX_BATCH changes, written in one call) is being applied, a grant is revoked, and the revoke is
answered before the batch is, in about the time a revoke takes on a quiet store (SQLite and PostgreSQL).

On PostgreSQL the batch once held the audit chain's head lock while it flushed its thousands of tag rows,
and every revoke (which records an event) waited for it: the tags are now flushed before the event."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import select

from sluice.connectors.base import DiscoveredResource
from sluice.services.targeting.inventory import apply_discovery
from sluice.services.targeting.tag_changes import MAX_BATCH
from sluice.store.db import transaction
from sluice.store.tables import Integration
from tests.api.conftest import Api

pytestmark = pytest.mark.timing  # compares the revoke with a quiet one: run alone, not beside other tests

RESOURCES = 200  # MAX_BATCH tags spread so that no resource passes its cap of 200 tags


def _group(name: str) -> DiscoveredResource:
    return DiscoveredResource("group", name, f"groups/{name}", None, {})


def _add_groups(api: Api) -> list[str]:
    names = [f"bulk-{n:03d}" for n in range(RESOURCES)]
    with transaction(api.runtime.factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == "groups"))
        assert integration is not None
        found = [_group("oncall"), _group("dba"), *(_group(name) for name in names)]
        apply_discovery(session, integration, found, api.runtime.clock())
    return [f"groups/{name}" for name in names]


def _active_grant(api: Api, group: str) -> str:
    asked = api.ask("alice", group=group)
    assert api.post("bob", f"/requests/{asked['id']}/approve").status_code == 200
    api.work()
    return str(asked["grants"][0]["id"])


def _timed_revoke(api: Api, grant_id: str) -> tuple[httpx.Response, float, float]:
    started = time.monotonic()
    response = api.post("carol", f"/access/{grant_id}/revoke", {"reason": "incident closed"})
    return response, started, time.monotonic()


def test_revoke_is_answered_while_a_maximal_tag_batch_is_written(any_store_api: Api) -> None:
    api = any_store_api
    paths = _add_groups(api)
    quiet_response, started, ended = _timed_revoke(api, _active_grant(api, "dba"))
    assert quiet_response.status_code == 200, quiet_response.text
    quiet = ended - started
    grant_id = _active_grant(api, "oncall")

    value = "v" * 40  # the whole batch stays under the 1 MiB body limit
    changes = [
        {"resource": paths[n % RESOURCES], "set": {f"k{n // RESOURCES}": value}} for n in range(MAX_BATCH)
    ]
    batch: dict[str, object] = {}

    def write_batch() -> None:
        batch["started"] = time.monotonic()
        batch["response"] = api.post("root", "/tags/batch", {"changes": changes})
        batch["ended"] = time.monotonic()

    writer = threading.Thread(target=write_batch)
    writer.start()
    time.sleep(0.5)  # the batch is read and its first writes are under way
    revoked, revoke_started, revoke_ended = _timed_revoke(api, grant_id)
    writer.join(timeout=120)

    response = batch["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text
    assert response.json()["set"] == MAX_BATCH
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] in {"revoking", "revoked"}
    batch_ended = batch["ended"]
    assert isinstance(batch_ended, float)
    # The revoke ran while the batch was being written, and did not wait for it to commit.
    assert revoke_started < batch_ended, "the batch was over before the revoke began; nothing was tested"
    assert revoke_ended < batch_ended, (
        f"the revoke waited for the batch: answered {revoke_ended - revoke_started:.2f}s after it was "
        f"sent, {revoke_ended - batch_ended:.2f}s after the batch ended"
    )
    # The batch runs in this process, so the revoke also waits its turn for the interpreter between its
    # statements (several times slower than on a quiet store, measured alone); a wait on the batch's locks
    # would take most of the batch's seconds.
    during = revoke_ended - revoke_started
    assert during < max(2.0, 15 * quiet), f"revoke took {during:.2f}s during the batch, {quiet:.2f}s quiet"
