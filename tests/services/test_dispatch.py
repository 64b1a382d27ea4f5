"""The dispatcher starts a queued call as soon as one finishes, and hands back together the outcomes
that finish close together, so that the loop records them in one transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from sluice.connectors.base import AccessUnit
from sluice.services.grants.work_outcomes import Job, Outcome
from sluice.worker.dispatch import Dispatcher


def job(name: str) -> Job:
    unit = AccessUnit(
        grant_id=name,
        principal=name,
        grantee_email="alice@example.com",
        resource_type="group",
        resource_path="groups/oncall",
        permission="member",
        ends_at=None,
        secret=None,
    )
    return Job(
        grant_id=name, operation="revoke", integration_id="int_1", integration_name="groups", unit=unit
    )


class Calls:
    """Target calls that block until the test releases them, and say when they started."""

    def __init__(self) -> None:
        self.release = {name: threading.Event() for name in "abc"}
        self.started = {name: threading.Event() for name in "abc"}

    def __call__(self, job: Job) -> Outcome:
        self.started[job.grant_id].set()
        assert self.release[job.grant_id].wait(10)
        return Outcome(job)


@pytest.fixture
def calls() -> Iterator[Calls]:
    made = Calls()
    yield made
    for event in made.release.values():
        event.set()


def dispatcher(run: Callable[[Job], Outcome], per_integration: int) -> Dispatcher:
    return Dispatcher(run, threads=4, per_integration=per_integration, claim_ahead=10)


def test_a_finished_call_starts_the_next_queued_one_without_waiting_for_the_loop(calls: Calls) -> None:
    pool = dispatcher(calls, per_integration=1)
    pool.add([job("a"), job("b")])
    assert calls.started["a"].wait(5)
    assert not calls.started["b"].is_set()  # one at a time for this integration
    calls.release["a"].set()
    assert calls.started["b"].wait(5), "b waited for the loop to collect a's outcome"
    calls.release["b"].set()
    assert sorted(o.job.grant_id for o in pool.drain()) == ["a", "b"]
    pool.shutdown()


def test_outcomes_finishing_within_the_gather_window_come_back_together(calls: Calls) -> None:
    pool = dispatcher(calls, per_integration=3)
    pool.add([job("a"), job("b"), job("c")])
    calls.release["a"].set()
    assert [o.job.grant_id for o in pool.wait(5)] == ["a"]  # no window: what has finished, now
    calls.release["b"].set()
    threading.Timer(0.05, calls.release["c"].set).start()
    assert sorted(o.job.grant_id for o in pool.wait(5, gather=5.0)) == ["b", "c"]
    assert pool.idle
    pool.shutdown()


def test_a_store_failure_before_the_call_comes_back_as_a_failed_outcome() -> None:
    def broken(job: Job) -> Outcome:
        raise RuntimeError("the store went away")

    pool = dispatcher(broken, per_integration=1)
    pool.add([job("a")])
    [outcome] = pool.drain()
    assert outcome.error is not None and "RuntimeError" in str(outcome.error)
    pool.shutdown()
