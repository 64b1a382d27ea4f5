"""The grant and request state machines.

A grant row holds what should be (`desired`) and what is known to be in the target (`actual`); the
worker acts on rows where the two differ. The public `state` a person sees is derived from both.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def needs_target_work(desired: str, actual: str) -> bool:
    """True where the worker must touch the target to make it match the row."""
    if desired == Desired.ACTIVE:
        return actual != Actual.ACTIVE
    if desired == Desired.REVOKED:
        return actual in (Actual.ACTIVE, Actual.UNKNOWN)
    return False


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
