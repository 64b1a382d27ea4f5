"""Every grant state is written twice: as SQL over the table (`store/grant_states.py`) and in Python
over one row (`domain/states.py`). Hypothesis generates rows (desired, actual, times, claims) and
checks that both answer alike, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from sluice.domain import states
from sluice.domain.states import Actual, Desired, GrantState
from sluice.store import grant_states as sql
from sluice.store.db import make_engine
from sluice.store.tables import Base, Grant, Identity, Integration

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
# Moments around NOW, the boundaries included, so that `<=` against `<` would be caught.
MOMENTS = st.none() | st.sampled_from([-3600, -1, 0, 1, 3600]).map(lambda s: NOW + timedelta(seconds=s))


@dataclass(frozen=True)
class Row:
    desired: str
    actual: str
    next_attempt_at: datetime | None
    claimed_until: datetime | None
    ends_at: datetime | None
    revoke_failed: bool


rows = st.builds(
    Row,
    desired=st.sampled_from(list(Desired)),
    actual=st.sampled_from(list(Actual)),
    next_attempt_at=MOMENTS,
    claimed_until=MOMENTS,
    ends_at=MOMENTS,
    revoke_failed=st.booleans(),
)

# Each SQL predicate with its Python twin.
PAIRS: dict[str, tuple[ColumnElement[bool], Callable[[Row], bool]]] = {
    "open": (sql.grant_is_open(), lambda r: states.is_open(r.desired)),
    "awaits_start": (sql.grant_awaits_start(), lambda r: states.awaits_start(r.desired)),
    "should_be_active": (sql.grant_should_be_active(), lambda r: states.should_be_active(r.desired)),
    "ended": (sql.grant_is_ended(), lambda r: states.is_ended(r.desired)),
    "held_in_target": (sql.grant_held_in_target(), lambda r: states.held_in_target(r.actual)),
    "may_be_in_target": (sql.grant_may_be_in_target(), lambda r: states.may_be_in_target(r.actual)),
    "never_touched": (sql.grant_never_touched(), lambda r: states.never_touched(r.actual)),
    "active": (sql.grant_is_active(), lambda r: states.is_active(r.desired, r.actual)),
    "live": (sql.grant_is_live(), lambda r: states.is_live(r.desired, r.actual)),
    "revoke_outstanding": (
        sql.grant_revoke_outstanding(),
        lambda r: states.revoke_outstanding(r.desired, r.actual),
    ),
    "justifies_principal": (
        sql.grant_justifies_principal(),
        lambda r: states.justifies_principal(r.desired, r.actual),
    ),
    "needs_target_work": (
        sql.grant_needs_target_work(),
        lambda r: states.needs_target_work(r.desired, r.actual),
    ),
    "work_due": (
        sql.grant_work_due(NOW),
        lambda r: states.work_due(r.desired, r.actual, r.next_attempt_at, NOW),
    ),
    "needs_work": (
        sql.grant_needs_work(NOW),
        lambda r: states.needs_work(r.desired, r.actual, r.next_attempt_at, r.claimed_until, NOW),
    ),
    "due_to_expire": (
        sql.grant_due_to_expire(NOW),
        lambda r: states.due_to_expire(r.desired, r.ends_at, NOW),
    ),
}
for _state in GrantState:
    PAIRS[f"in_state:{_state}"] = (
        sql.grant_in_state(_state),
        lambda r, s=_state: states.grant_state(r.desired, r.actual, revoke_failed=r.revoke_failed) == s,
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('states') / 'store.db'}"
    else:
        url = request.getfixturevalue("make_pg_database")("sluice_states")
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.add(Identity(id="id_a", email="a@example.com", name="A", created_at=NOW, updated_at=NOW))
        session.add(Integration(id="int_pg", name="pg", kind="postgresql", created_at=NOW, updated_at=NOW))
    yield engine
    engine.dispose()


def _grant(number: int, row: Row) -> Grant:
    return Grant(
        id=f"gr_{number}",
        identity_id="id_a",
        integration_id="int_pg",
        resource_path="pg/app",
        resource_type="database",
        permission="connect",
        desired=row.desired,
        actual=row.actual,
        duration_seconds=3600,
        ends_at=row.ends_at,
        next_attempt_at=row.next_attempt_at,
        claimed_by="w1" if row.claimed_until else None,
        claimed_until=row.claimed_until,
        revoke_failed_at=NOW if row.revoke_failed else None,
        principal=f"sluice_{number}",
        created_at=NOW,
        updated_at=NOW,
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.lists(rows, min_size=1, max_size=12))
def test_sql_and_python_agree(engine: Engine, table: list[Row]) -> None:
    with Session(engine) as session, session.begin():
        session.add_all([_grant(n, row) for n, row in enumerate(table)])
        session.flush()
        answers = {
            name: set(session.scalars(select(Grant.id).where(clause))) for name, (clause, _) in PAIRS.items()
        }
        session.rollback()
    for name, (_, twin) in PAIRS.items():
        expected = {f"gr_{n}" for n, row in enumerate(table) if twin(row)}
        assert answers[name] == expected, (name, table)


def test_every_row_has_exactly_one_public_state(engine: Engine) -> None:
    """The `in_state` predicates split the table: each row is in one state, as `grant_state` says."""
    table = [Row(d, a, None, None, None, f) for d in Desired for a in Actual for f in (False, True)]
    with Session(engine) as session, session.begin():
        session.add_all([_grant(n, row) for n, row in enumerate(table)])
        session.flush()
        seen = [
            gid
            for state in GrantState
            for gid in session.scalars(select(Grant.id).where(sql.grant_in_state(state)))
        ]
        session.rollback()
    assert sorted(seen) == sorted(f"gr_{n}" for n in range(len(table)))
