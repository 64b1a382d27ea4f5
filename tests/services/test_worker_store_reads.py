"""What one worker pass asks of the store: an idle pass asks which duties have work in one
transaction and runs none, a claim that took every due row is not repeated while the pass's calls run,
and on SQLite the planner has statistics to choose indexes by."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

from sluice.domain.states import Actual, Desired
from sluice.runtime.tuning import Tuning
from sluice.services.grants.people_pass import PeopleDuty
from sluice.services.grants.work import Claim
from sluice.services.grants.work_outcomes import Job, Outcome
from sluice.store.db import transaction
from sluice.store.planner_stats import PlannerStatistics
from sluice.store.tables import Grant
from tests.services.conftest import Store

REVOKES = 6  # more than a pass's calls per integration (4), so the queue runs low while they run


def add_revokes_due(store: Store) -> list[str]:
    now = store.clock()
    ids = [f"gr_due_{n}" for n in range(REVOKES)]
    with transaction(store.factory) as session:
        for grant_id in ids:
            session.add(
                Grant(
                    id=grant_id,
                    identity_id="id_0",
                    integration_id="int_groups",
                    resource_path="groups/oncall",
                    resource_type="group",
                    permission="member",
                    desired=Desired.REVOKED,
                    actual=Actual.ACTIVE,
                    duration_seconds=60,
                    starts_at=now - timedelta(minutes=5),
                    ends_at=now - timedelta(minutes=1),
                    principal="alice@example.com",
                    created_at=now,
                    updated_at=now,
                )
            )
    return ids


@pytest.mark.parametrize("share", [25, 4], ids=["share-holds-all", "share-holds-part"])
def test_a_claim_that_took_every_due_row_is_not_repeated_while_the_calls_run(
    store: Store, share: int
) -> None:
    worker = store.worker(tuning=replace(Tuning(), claim_per_integration=share))
    worker.run_once()  # the duties' first runs, with nothing to do at the targets
    ids = add_revokes_due(store)

    def slow_call(job: Job) -> Outcome:
        time.sleep(0.03)
        return Outcome(job)

    claims: list[int] = []
    claim = worker.reconciler.claim

    def counted_claim(*args: object, **kwargs: object) -> Claim:
        taken = claim(*args, **kwargs)  # type: ignore[arg-type]
        claims.append(len(taken.jobs))
        return taken

    worker.dispatcher._run = slow_call  # type: ignore[method-assign]
    worker.reconciler.claim = counted_claim  # type: ignore[method-assign]
    assert worker.run_once() == REVOKES
    if share > REVOKES:
        assert claims == [REVOKES], "a claim that took every due row was made again"
    else:  # the first claim filled its share: there may be more, and it looks
        assert claims[0] == share and sum(claims) == REVOKES and len(claims) >= 2, claims
    with transaction(store.factory) as session:
        actual = session.scalars(select(Grant.actual).where(Grant.id.in_(ids))).all()
    assert actual == [Actual.REVOKED] * REVOKES


def test_an_idle_pass_runs_no_duty_and_a_changed_flow_still_brings_a_people_pass(store: Store) -> None:
    worker = store.worker()
    worker.run_once()  # the first pass: every duty runs once
    ran: list[str] = []
    for duty in worker.duties:
        original = duty.run

        def counted(original=original, name=type(duty).__name__):  # type: ignore[no-untyped-def]
            ran.append(name)
            return original()

        duty.run = counted  # type: ignore[method-assign]
    transactions: list[int] = []
    event.listen(store.factory.kw["bind"], "begin", lambda _conn: transactions.append(1))
    worker.run_once()
    # Which duties are due (1), the expiry (1) and the claim (1): no duty has work, none runs.
    assert [name for name in ran if name != "GrantExpiry"] == []
    assert len(transactions) == 3, len(transactions)

    with transaction(store.factory) as session:
        later = store.clock() + timedelta(seconds=1)
        session.execute(text("UPDATE access_flows SET updated_at = :later"), {"later": later})
    worker.run_once()  # nothing woke it, but the people pass sees the flows changed
    assert PeopleDuty.__name__ in ran


def test_the_worker_gives_sqlites_planner_statistics_once_an_hour(store: Store) -> None:
    add_revokes_due(store)
    stats = PlannerStatistics(store.factory, clock=store.clock)
    assert stats.run() is True
    with transaction(store.factory) as session:
        analysed = set(session.scalars(text("SELECT DISTINCT tbl FROM sqlite_stat1")))
        assert {"grants", "resources", "audit_events"} <= analysed
        assert stats.next_due(session, store.clock()) == store.clock() + timedelta(hours=1)
    assert stats.run() is False
    store.clock.advance(hours=1)
    assert stats.run() is True


def test_outcomes_the_store_lost_are_done_again_by_the_same_worker(store: Store) -> None:
    """A pass whose outcomes cannot be recorded leaves the rows claimed by this worker; its heartbeat
    would renew those claims for as long as it lives, so the next pass releases them and does the
    calls again, instead of leaving the grants to wait for a restart."""
    worker = store.worker()
    worker.run_once()
    ids = add_revokes_due(store)
    record = worker.reconciler.record

    def store_gone(outcomes: list[Outcome]) -> None:
        if outcomes:
            raise OperationalError("UPDATE grants", {}, Exception("the store went away"))

    worker.reconciler.record = store_gone  # type: ignore[method-assign]
    with pytest.raises(OperationalError):
        worker.run_once()
    with transaction(store.factory) as session:
        held = session.scalars(select(Grant.claimed_by).where(Grant.id.in_(ids))).all()
    assert set(held) == {worker.reconciler.worker_id}  # claimed and unrecorded; the lease has not lapsed

    worker.reconciler.record = record  # type: ignore[method-assign]
    assert worker.run_once() == REVOKES
    with transaction(store.factory) as session:
        rows = session.execute(select(Grant.actual, Grant.claimed_by).where(Grant.id.in_(ids))).all()
    assert set(rows) == {(Actual.REVOKED, None)}
