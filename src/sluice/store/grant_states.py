"""The grant states as SQL, written once: "live", "active", "needs target work", "due", "due to expire",
"justifies its principal", "in public state X". Each is a predicate over the `grants` table; its Python
twin over one row's values is in `domain/states.py` (same name without the `grant_` prefix), and
`tests/store/test_grant_states.py` keeps every pair in agreement on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, and_, not_, or_

from sluice.domain.states import Actual, Desired, GrantState
from sluice.store.tables import Grant

Moment = datetime | BindParameter[datetime]  # a time, or one bound when a statement built once runs
_MAY_BE_IN_TARGET = (Actual.ACTIVE, Actual.UNKNOWN)
# "Not active in the target", spelt as the values it allows: `actual != 'active'` cannot seek an index,
# so beside `desired = 'active'` it read every active grant; `actual IN (...)` seeks `ix_grants_work`.
_NOT_HELD = tuple(a for a in Actual if a != Actual.ACTIVE)


def grant_is_open() -> ColumnElement[bool]:
    """Not ended: waiting for its start or approval, or meant to be active."""
    return Grant.desired.in_([Desired.PENDING, Desired.ACTIVE])


def grant_awaits_start() -> ColumnElement[bool]:
    """Pending: nothing should exist in the target yet."""
    return Grant.desired == Desired.PENDING


def grant_should_be_active() -> ColumnElement[bool]:
    return Grant.desired == Desired.ACTIVE


def grant_is_ended() -> ColumnElement[bool]:
    return Grant.desired == Desired.REVOKED


def grant_held_in_target() -> ColumnElement[bool]:
    return Grant.actual == Actual.ACTIVE


def _not_held_in_target() -> ColumnElement[bool]:
    """A part of the predicates below, not one of them: its twin is `not held_in_target(...)`."""
    return Grant.actual.in_(_NOT_HELD)


def grant_may_be_in_target() -> ColumnElement[bool]:
    return Grant.actual.in_(_MAY_BE_IN_TARGET)


def grant_never_touched() -> ColumnElement[bool]:
    return Grant.actual == Actual.NONE


def grant_is_active() -> ColumnElement[bool]:
    """Meant to be active and known to be in the target: the public state `active`."""
    return and_(grant_should_be_active(), grant_held_in_target())


def grant_is_live() -> ColumnElement[bool]:
    """A grant that holds, or may yet hold, access in the target."""
    return or_(grant_is_open(), grant_may_be_in_target())


def grant_revoke_outstanding() -> ColumnElement[bool]:
    """Ended in the store while the target may still hold it: the worker is taking it away."""
    return and_(grant_is_ended(), grant_may_be_in_target())


def grant_justifies_principal() -> ColumnElement[bool]:
    """A grant whose principal may rightly be in the target now: it should be active, or the worker
    has yet to take it away. A principal of this installation that no such grant claims is an orphan;
    a pending grant has touched nothing yet, so it justifies nothing either."""
    return or_(grant_should_be_active(), grant_revoke_outstanding())


def grant_needs_target_work() -> ColumnElement[bool]:
    """Rows where what should be differs from what is known to be."""
    return or_(
        and_(grant_should_be_active(), _not_held_in_target()),
        grant_revoke_outstanding(),
    )


def grant_work_due(now: Moment) -> ColumnElement[bool]:
    """Rows that need target work and whose turn has come, whether a worker holds them now or not."""
    turn = or_(Grant.next_attempt_at.is_(None), Grant.next_attempt_at <= now)
    return and_(grant_needs_target_work(), turn)


def grant_needs_work(now: Moment) -> ColumnElement[bool]:
    """Rows whose work is due and that no worker holds (or whose holder's claim lapsed)."""
    unclaimed = or_(Grant.claimed_until.is_(None), Grant.claimed_until <= now)
    return and_(grant_work_due(now), unclaimed)


def grant_due_to_expire(now: datetime) -> ColumnElement[bool]:
    return and_(grant_should_be_active(), Grant.ends_at.is_not(None), Grant.ends_at <= now)


def grant_in_state(state: GrantState) -> ColumnElement[bool]:
    """Rows whose public state (`domain.states.grant_state`) is `state`."""
    if state == GrantState.PENDING:
        return grant_awaits_start()
    if state == GrantState.GRANTING:
        return and_(grant_should_be_active(), _not_held_in_target())
    if state == GrantState.ACTIVE:
        return grant_is_active()
    ending = not_(grant_is_open())
    touched = grant_may_be_in_target()
    if state == GrantState.REVOKING:
        return and_(ending, touched, Grant.revoke_failed_at.is_(None))
    if state == GrantState.REVOKE_FAILED:
        return and_(ending, touched, Grant.revoke_failed_at.is_not(None))
    if state == GrantState.REVOKED:
        return and_(ending, Grant.actual == Actual.REVOKED)
    if state == GrantState.NOT_GRANTED:
        return and_(ending, not_(Grant.actual.in_([*_MAY_BE_IN_TARGET, Actual.REVOKED])))
    raise ValueError(f"no grant state {state!r}")
