"""Two approvers act on the same request at the same moment: exactly one wins, the other gets 409."""

from __future__ import annotations

import threading

import httpx

from tests.api.conftest import Api

ROUNDS = 5


def _race(api: Api, request_id: str) -> list[httpx.Response]:
    barrier = threading.Barrier(2)
    answers: dict[str, httpx.Response] = {}

    def approve(who: str) -> None:
        barrier.wait()
        answers[who] = api.post(who, f"/requests/{request_id}/approve", {"reason": f"{who} says yes"})

    threads = [threading.Thread(target=approve, args=(who,)) for who in ("bob", "carol")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return list(answers.values())


def test_racing_approvals(any_store_api: Api) -> None:
    api = any_store_api
    for round_ in range(ROUNDS):
        asked = api.ask("alice" if round_ % 2 else "dave", group="oncall" if round_ < 2 else "dba")
        answers = _race(api, asked["id"])
        assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
        loser = next(r for r in answers if r.status_code == 409)
        assert loser.headers["content-type"].startswith("application/problem+json")
        shown = api.get("alice" if round_ % 2 else "dave", f"/requests/{asked['id']}").json()
        assert len(shown["approvals"]) == 1
        assert shown["status"] == "approved"
        api.post("root", f"/requests/{asked['id']}/cancel")  # frees the resource for the next round
