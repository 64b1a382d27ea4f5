"""Hostile text in resource names and reasons is shown as text, never as markup."""

from __future__ import annotations

from sqlalchemy import select

from sluice.store.db import transaction
from sluice.store.tables import Integration, Resource
from sluice.store.types import new_id
from tests.web.conftest import Portal
from tests.web.test_pages import _ask

HOSTILE = '<script>alert("x")</script>\'"><img src=x onerror=alert(1)>'


def _hostile_group(portal: Portal) -> str:
    """A resource named as a target may name one (a PostgreSQL table may be called anything), written
    to the inventory as a sync writes it."""
    runtime = portal.api.runtime
    now = runtime.clock()
    path = f"groups/{HOSTILE}"
    with transaction(runtime.factory) as session:
        groups = session.scalar(select(Integration).where(Integration.name == "groups"))
        assert groups is not None
        session.add(
            Resource(
                id=new_id("res"),
                integration_id=groups.id,
                type="group",
                name=HOSTILE,
                path=path,
                discovered_at=now,
                updated_at=now,
            )
        )
    return path


def _clean(text: str) -> None:
    assert "<script>alert" not in text
    assert "<img src=x" not in text
    assert "&lt;script&gt;" in text


def test_hostile_resource_names_and_reasons_are_escaped(portal: Portal) -> None:
    path = _hostile_group(portal)
    alice = portal.browser("alice")
    _clean(alice.get("/request", params={"q": "script"}).text)
    review = alice.get("/request/review", params={"unit": f"member {path}"})
    assert review.status_code == 200, review.text
    _clean(review.text)
    answer = portal.post(alice, "/request", unit=f"member {path}", duration="1h", reason=HOSTILE)
    assert answer.status_code == 303, answer.text
    request_id = answer.headers["location"].rsplit("/", 1)[1]
    for page in (f"/requests/{request_id}", "/history"):
        _clean(alice.get(page).text)
    carol = portal.browser("carol")
    _clean(carol.get("/approvals").text)
    root = portal.browser("root", admin=True)
    _clean(root.get("/history", params={"scope": "all"}).text)


def test_hostile_query_text_is_escaped_and_bad_input_is_a_page(portal: Portal) -> None:
    _ask(portal)
    alice = portal.browser("alice")
    page = alice.get("/request", params={"q": HOSTILE})
    assert page.status_code == 200
    _clean(page.text)
    bad = alice.get("/request", params={"q": "a\x00b"})
    assert bad.status_code == 422 and "<h1>Bad input</h1>" in bad.text
    unknown = alice.get("/request/review", params={"unit": "member groups/<b>nope</b>"})
    assert unknown.status_code == 404 and "<b>nope</b>" not in unknown.text
    root = portal.browser("root", admin=True)
    _clean(root.get("/admin/audit", params={"subject": HOSTILE}).text)
    explained = root.get(
        "/admin", params={"who": HOSTILE, "resource": "groups/oncall", "permission": "member"}
    )
    assert explained.status_code == 404 and "<script>alert" not in explained.text
