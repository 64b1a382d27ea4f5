"""Favourites in the portal: saved from the review form, listed on the request page with a form per
action (each carrying the cross-site token), asked for again in one click through the same service
as the API, removed; hostile names and reasons shown as text, bad ones refused as pages."""

from __future__ import annotations

import re

from sqlalchemy import update

from sluice.store.db import transaction
from sluice.store.tables import Resource
from sluice.web.guard import CSRF_COOKIE
from tests.web.conftest import Portal
from tests.web.test_hostile_input import HOSTILE, _clean, _hostile_group

DBA = "member groups/dba"


def _save(portal: Portal, who: str = "alice", **fields: str | list[str]) -> str:
    """Save through the review form's second button; return the new favourite's id."""
    browser = portal.browser(who)
    form = {"unit": DBA, "duration": "1h", "reason": "cover", "favourite": "dba cover"} | fields
    answer = portal.post(browser, "/favourites", **form)
    assert answer.status_code == 303 and answer.headers["location"] == "/request", answer.text
    items = portal.api.get(who, "/favourites").json()["items"]
    return str(next(f["id"] for f in items if f["name"] == form["favourite"]))


def test_save_list_ask_again_and_remove(portal: Portal) -> None:
    alice = portal.browser("alice")
    review = alice.get("/request/review", params={"unit": DBA})
    assert 'formaction="/favourites"' in review.text and 'name="favourite"' in review.text
    favourite = _save(portal)
    page = alice.get("/request").text
    assert f'data-favourite="{favourite}"' in page and "dba cover" in page and "member on groups/dba" in page
    token = alice.cookies[CSRF_COOKIE]
    for action in ("ask", "delete"):
        form = re.search(rf'action="/favourites/{favourite}/{action}"[^>]*>\s*<input[^>]*>', page)
        assert form and f'value="{token}"' in form.group(0), action

    asked = portal.post(alice, f"/favourites/{favourite}/ask")
    assert asked.status_code == 303, asked.text
    request_id = asked.headers["location"].rsplit("/", 1)[1]
    shown = portal.api.get("alice", f"/requests/{request_id}").json()
    assert (shown["status"], shown["reason"], shown["duration"]) == ("pending", "cover", "1h")
    assert request_id in portal.browser("carol").get("/approvals").text

    assert portal.post(alice, f"/favourites/{favourite}/delete").status_code == 303
    assert f'data-favourite="{favourite}"' not in alice.get("/request").text
    assert portal.post(alice, f"/favourites/{favourite}/ask").status_code == 404


def test_a_form_without_its_token_changes_nothing(portal: Portal) -> None:
    favourite = _save(portal)
    alice = portal.browser("alice")
    fields = {"unit": DBA, "duration": "1h", "reason": "x", "favourite": "sneaky"}
    assert alice.post("/favourites", data=fields).status_code == 403
    assert alice.post(f"/favourites/{favourite}/ask", data={"csrf": "forged"}).status_code == 403
    assert alice.post(f"/favourites/{favourite}/delete").status_code == 403
    assert [f["name"] for f in portal.api.get("alice", "/favourites").json()["items"]] == ["dba cover"]
    assert portal.api.get("alice", "/requests").json()["total"] == 0


def test_a_bundle_is_saved_as_a_bundle(portal: Portal) -> None:
    portal.api.put_group_bundle("dba-kit", "dba")
    alice = portal.browser("alice")
    review = alice.get("/request/review", params={"bundle": "dba-kit"}).text
    assert 'name="bundle" value="dba-kit"' in review
    _save(portal, bundle="dba-kit", favourite="kit")
    saved = portal.api.get("alice", "/favourites").json()["items"][0]
    assert (saved["bundle"], saved["units"]) == ("dba-kit", [])
    assert "bundle dba-kit" in alice.get("/request").text


def test_hostile_names_reasons_and_resources_are_shown_as_text(portal: Portal) -> None:
    path = _hostile_group(portal)
    _save(portal, favourite=HOSTILE, reason=HOSTILE, unit=f"member {path}")
    page = portal.browser("alice").get("/request")
    assert page.status_code == 200
    _clean(page.text)
    assert page.text.count("&lt;script&gt;") >= 3  # the name, the resource and the reason


def test_bad_favourites_are_refused_as_pages(portal: Portal) -> None:
    alice = portal.browser("alice")
    for name in ("", "   ", "x" * 121, "a\x00b"):
        refused = portal.post(alice, "/favourites", unit=DBA, duration="1h", reason="r", favourite=name)
        assert refused.status_code == 422, (name, refused.status_code)
    for fields in (
        {"reason": "nul\x00"},
        {"duration": HOSTILE},
        {"unit": "member"},
        {"unit": [DBA, DBA]},
    ):
        form = {"unit": DBA, "duration": "1h", "reason": "r", "favourite": "f"} | fields
        refused = portal.post(alice, "/favourites", **form)
        assert refused.status_code == 422, (fields, refused.status_code)
        assert "<script>alert" not in refused.text
    assert portal.api.get("alice", "/favourites").json()["items"] == []


def test_asking_for_a_vanished_resource_says_which_favourite_and_why(portal: Portal) -> None:
    favourite = _save(portal)
    with transaction(portal.api.runtime.factory) as session:
        session.execute(
            update(Resource).where(Resource.path == "groups/dba").values(deleted_at=portal.api.clock())
        )
    answer = portal.post(portal.browser("alice"), f"/favourites/{favourite}/ask")
    assert answer.status_code == 409
    assert "favourite &#39;dba cover&#39;" in answer.text and "no longer exists" in answer.text
    assert portal.api.get("alice", "/requests").json()["total"] == 0
