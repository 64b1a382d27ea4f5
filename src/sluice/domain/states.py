"""The grant and request state machines.

A grant row holds what should be (`desired`) and what is known to be in the target (`actual`); the
worker acts on rows where the two differ. The public `state` a person sees is derived from both.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum


class Desired(StrEnum):
    PENDING = "pending"  # waiting for approval or for its start time: nothing should exist yet
    ACTIVE = "active"
    REVOKED = "revoked"


class Actual(StrEnum):
    NONE = "none"  # the target was never touched for this grant
    UNKNOWN = "unknown"  # a worker started touching the target; the outcome is not recorded
    ACTIVE = "active"
    REVOKED = "revoked"


class GrantState(StrEnum):
    PENDING = "pending"
    GRANTING = "granting"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKE_FAILED = "revoke_failed"  # revoking, and failing for longer than the window; still retried
    REVOKED = "revoked"
    NOT_GRANTED = "not_granted"  # rejected, cancelled or expired before any access existed


class RequestStatus(StrEnum):
    """The decision on a request. What the request *is* now is derived from its grants."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class RequestState(StrEnum):
    PENDING = "pending"
    GRANTING = "granting"
    ACTIVE = "active"
    REVOKING = "revoking"
    ENDED = "ended"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ReviewState(StrEnum):
    """Where a break-glass request stands with its review; a request that is not break-glass has none.
    Kept beside `RequestState` rather than in it: the request state says what its access is doing
    (granting, active, ended), which a break-glass request goes through like any other."""

    AWAITING_REVIEW = "awaiting_review"
    REVIEWED = "reviewed"  # an approver found it justified
    REVOKED = "revoked"  # an approver ended its access on review


def review_state(break_glass: bool, reviewed_at: datetime | None, outcome: str | None) -> ReviewState | None:
    if not break_glass:
        return None
    if reviewed_at is None:
        return ReviewState.AWAITING_REVIEW
    return ReviewState.REVOKED if outcome == "revoke" else ReviewState.REVIEWED


def grant_state(desired: str, actual: str, *, revoke_failed: bool = False) -> GrantState:
    """`revoke_failed` is the worker's verdict that this revoke has failed for longer than its window."""
    if desired == Desired.PENDING:
        return GrantState.PENDING
    if desired == Desired.ACTIVE:
        return GrantState.ACTIVE if actual == Actual.ACTIVE else GrantState.GRANTING
    if actual in (Actual.ACTIVE, Actual.UNKNOWN):
        return GrantState.REVOKE_FAILED if revoke_failed else GrantState.REVOKING
    if actual == Actual.REVOKED:
        return GrantState.REVOKED
    return GrantState.NOT_GRANTED


# The grant states as predicates over one row's values. `store/grant_states.py` holds their SQL twins
# (the same rule over the table); a property test keeps each pair in agreement.


def is_open(desired: str) -> bool:
    """Not ended: waiting for its start or approval, or meant to be active."""
    return desired in (Desired.PENDING, Desired.ACTIVE)


def awaits_start(desired: str) -> bool:
    """Pending: nothing should exist in the target yet."""
    return desired == Desired.PENDING


def should_be_active(desired: str) -> bool:
    return desired == Desired.ACTIVE


def is_ended(desired: str) -> bool:
    """Ended in the store (revoked, expired, rejected, cancelled); the target may not know yet."""
    return desired == Desired.REVOKED


def held_in_target(actual: str) -> bool:
    """The target is known to hold the access."""
    return actual == Actual.ACTIVE


def may_be_in_target(actual: str) -> bool:
    """The target holds the access, or may: a worker touched it and the outcome is not recorded."""
    return actual in (Actual.ACTIVE, Actual.UNKNOWN)


def never_touched(actual: str) -> bool:
    return actual == Actual.NONE


def is_active(desired: str, actual: str) -> bool:
    """Meant to be active and known to be in the target: the public state `active`."""
    return should_be_active(desired) and held_in_target(actual)


def is_live(desired: str, actual: str) -> bool:
    """Holds, or may yet hold, access in the target."""
    return is_open(desired) or may_be_in_target(actual)


def revoke_outstanding(desired: str, actual: str) -> bool:
    """Ended in the store while the target may still hold it: the worker is taking it away."""
    return is_ended(desired) and may_be_in_target(actual)


def justifies_principal(desired: str, actual: str) -> bool:
    """Its principal may rightly be in the target now (`services/grants/orphans.py`): it should be active, or
    the worker has yet to take it away. A pending grant has touched nothing, so it justifies nothing."""
    return should_be_active(desired) or revoke_outstanding(desired, actual)


def needs_target_work(desired: str, actual: str) -> bool:
    """True where the worker must touch the target to make it match the row."""
    return (should_be_active(desired) and not held_in_target(actual)) or revoke_outstanding(desired, actual)


def work_due(desired: str, actual: str, next_attempt_at: datetime | None, now: datetime) -> bool:
    """Needs target work and its turn has come, whether a worker holds it now or not."""
    return needs_target_work(desired, actual) and (next_attempt_at is None or next_attempt_at <= now)


def needs_work(
    desired: str,
    actual: str,
    next_attempt_at: datetime | None,
    claimed_until: datetime | None,
    now: datetime,
) -> bool:
    """Work is due and no worker holds the row (or its holder's claim lapsed)."""
    unclaimed = claimed_until is None or claimed_until <= now
    return work_due(desired, actual, next_attempt_at, now) and unclaimed


def due_to_expire(desired: str, ends_at: datetime | None, now: datetime) -> bool:
    """Still meant to be active although its end time has passed."""
    return should_be_active(desired) and ends_at is not None and ends_at <= now


def request_state(status: str, grant_states: Iterable[GrantState]) -> RequestState:
    states = set(grant_states)
    if status == RequestStatus.PENDING:
        return RequestState.PENDING
    if status != RequestStatus.APPROVED and not states & {
        GrantState.REVOKING,
        GrantState.REVOKE_FAILED,
        GrantState.ACTIVE,
    }:
        return RequestState(status)
    if GrantState.GRANTING in states or GrantState.PENDING in states:
        return RequestState.GRANTING
    if GrantState.ACTIVE in states:
        return RequestState.ACTIVE
    if states & {GrantState.REVOKING, GrantState.REVOKE_FAILED}:
        return RequestState.REVOKING
    return RequestState.ENDED
