"""The approvals inbox shows, beside each waiting request, the requester's last few requests (status,
what, when), newest first and never the row itself, read for the whole page at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from sluice.web.routes.approvals import HISTORY_SHOWN
from tests.web.conftest import Portal
from tests.web.test_hostile_input import _clean, _hostile_group


def _history(page: str, request_id: str) -> list[str]:
    row = re.search(rf'<tr data-request="{request_id}">.*?</tr>', page, re.S)
    assert row, request_id
    return re.findall(r'data-past="(\w+)"', row.group(0))


def _cancelled(portal: Portal, who: str, group: str) -> str:
    portal.api.clock.advance(minutes=1)
    asked = portal.api.ask(who, group=group)
    assert portal.api.post(who, f"/requests/{asked['id']}/cancel").status_code == 200
    return str(asked["id"])


def test_each_waiting_request_shows_the_requesters_latest_others(portal: Portal) -> None:
    first = portal.api.ask("dave", group="dba")["id"]  # dave has no past
    older = [_cancelled(portal, "alice", "dba") for _ in range(HISTORY_SHOWN + 1)]
    portal.api.clock.advance(minutes=1)
    waiting = portal.api.ask("alice")["id"]
    page = portal.browser("carol").get("/approvals").text
    assert _history(page, waiting) == list(reversed(older))[:HISTORY_SHOWN]
    alice_row = re.search(rf'<tr data-request="{waiting}">.*?</tr>', page, re.S)
    assert alice_row and "cancelled" in alice_row.group(0) and "member on groups/dba" in alice_row.group(0)
    assert _history(page, first) == []
    assert "none before" in page


def test_hostile_resources_in_the_history_are_text(portal: Portal) -> None:
    path = _hostile_group(portal)
    asked = portal.api.post(
        "alice", "/requests", {"resources": [path], "permission": "member", "duration": "1h", "reason": "r"}
    )
    assert asked.status_code == 201, asked.text
    assert portal.api.post("alice", f"/requests/{asked.json()['id']}/cancel").status_code == 200
    waiting = portal.api.ask("alice")["id"]
    page = portal.browser("carol").get("/approvals").text
    assert _history(page, waiting) == [asked.json()["id"]]
    _clean(page)


@contextmanager
def _statements(portal: Portal) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = portal.api.runtime.engine

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_history_costs_the_same_queries_for_any_number_of_requesters(portal: Portal) -> None:
    carol = portal.browser("carol")
    portal.api.ask("alice")
    with _statements(portal) as few:
        assert carol.get("/approvals").status_code == 200
    _cancelled(portal, "dave", "oncall")
    _cancelled(portal, "alice", "dba")
    portal.api.ask("dave", group="dba")
    with _statements(portal) as more:
        assert carol.get("/approvals").status_code == 200
    assert len(more) == len(few), (few, more)
