"""Every portal route, as each person and anonymously, answers as the API does for the same question:
the same pages exist for the same people, and what one may not see is absent (404) on both."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from sluice.web.app import PORTAL_MODULES
from tests.web.conftest import Portal
from tests.web.test_pages import _ask

PEOPLE = ["alice", "dave", "bob", "carol", "root"]
# Portal route → the API call that answers the same question ({id}: alice's pending request).
READ_PAIRS = {
    "/access": "/access",
    "/access/live": "/access",
    "/request": "/requestable",
    "/request/search": "/requestable",
    "/approvals": "/requests?scope=to_approve",
    "/history": "/requests?scope=mine",
    "/history.csv": "/requests?scope=mine",
    "/requests/{id}": "/requests/{id}",
    "/requests/{id}/live": "/requests/{id}",
    "/admin": "/grants",
    "/admin/audit": "/audit",
}
# Pages anyone may see, signed in or not.
PUBLIC = {"/", "/signin"}
# Actions: tested with a body of their own below or in test_pages / test_signin.
ACTIONS = {
    "/signin/demo",
    "/signout",
    "/request/review",
    "/request",
    "/approvals",
    "/access/{grant_id}/reveal",
    "/access/{grant_id}/extend",
    "/access/{grant_id}/end",
    "/requests/{request_id}/decide",
    "/requests/{request_id}/review",  # tests/web/test_break_glass_pages.py
    "/favourites",
    "/favourites/{favourite_id}/ask",
    "/favourites/{favourite_id}/delete",
}


def _portal_paths() -> set[str]:
    return {r.path for m in PORTAL_MODULES for r in m.router.routes if isinstance(r, APIRoute)}


def test_the_walk_covers_every_portal_route() -> None:
    """A new page must be added to the walk (or to the actions tested elsewhere) to pass."""
    walked = {p.replace("{id}", "{request_id}") for p in READ_PAIRS} | PUBLIC | ACTIONS
    assert _portal_paths() == walked


@pytest.mark.parametrize("who", [*PEOPLE, None])
def test_every_page_answers_as_the_api(portal: Portal, who: str | None) -> None:
    request_id = _ask(portal, "alice")
    browser = portal.browser(who, admin=who == "root")
    for page, api_path in READ_PAIRS.items():
        path = page.replace("{id}", request_id)
        answer = browser.get(path)
        if who is None:
            assert answer.status_code == 303 and answer.headers["location"] == "/signin", path
            assert portal.api.client.get("/api/v1" + api_path.replace("{id}", request_id)).status_code == 401
            continue
        expected = portal.api.get(who, api_path.replace("{id}", request_id)).status_code
        assert answer.status_code == expected, (who, path, answer.status_code, expected)
    for page in PUBLIC:
        assert browser.get(page).status_code in (200, 303)


@pytest.mark.parametrize("who", PEOPLE)
def test_the_inbox_and_history_hold_what_the_api_lists(portal: Portal, who: str) -> None:
    request_id = _ask(portal, "alice")
    browser = portal.browser(who, admin=who == "root")
    waiting = [r["id"] for r in portal.api.get(who, "/requests", scope="to_approve").json()["items"]]
    assert (request_id in browser.get("/approvals").text) == (request_id in waiting)
    everyone = portal.api.get(who, "/requests", scope="all")
    assert browser.get("/history", params={"scope": "all"}).status_code == everyone.status_code


@pytest.mark.parametrize("who", ["dave", "carol"])
def test_deciding_answers_as_the_api(portal: Portal, who: str) -> None:
    """dave may not see the request (404 on both), carol approves it (done on both)."""
    request_id = _ask(portal, "alice")
    probe = portal.api.post(who, f"/requests/{request_id}/approve", {"reason": "walk"})
    other = _ask(portal, "alice", group="dba")
    browser = portal.browser(who)
    answer = portal.post(browser, f"/requests/{other}/decide", decision="approve")
    assert (answer.status_code == 303) == (probe.status_code == 200)
    if probe.status_code != 200:
        assert answer.status_code == probe.status_code


@pytest.mark.parametrize("who", PEOPLE)
def test_favourites_are_their_owners_alone(portal: Portal, who: str) -> None:
    """alice's favourite: only alice may ask for it again or remove it; to anyone else it is absent
    (404), in the portal as in the API."""
    saved = portal.api.post(
        "alice",
        "/favourites",
        {
            "name": "oncall",
            "resources": ["groups/oncall"],
            "permission": "member",
            "duration": "1h",
            "reason": "r",
        },
    )
    assert saved.status_code == 201, saved.text
    favourite = saved.json()["id"]
    browser = portal.browser(who, admin=who == "root")
    listed = [f["id"] for f in portal.api.get(who, "/favourites").json()["items"]]
    assert (favourite in listed) == (who == "alice")
    assert (f'data-favourite="{favourite}"' in browser.get("/request").text) == (who == "alice")
    if who == "alice":
        return
    api = portal.api.post(who, f"/favourites/{favourite}/requests")
    assert api.status_code == 404
    for action in ("ask", "delete"):
        assert portal.post(browser, f"/favourites/{favourite}/{action}").status_code == 404
    assert (
        portal.api.client.delete(f"/api/v1/favourites/{favourite}", headers=portal.api.auth(who)).status_code
        == 404
    )
    assert [f["id"] for f in portal.api.get("alice", "/favourites").json()["items"]] == [favourite]
    assert portal.api.get("alice", "/requests").json()["total"] == 0
