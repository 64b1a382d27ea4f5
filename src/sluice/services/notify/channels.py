"""What a notification channel gets and implements. A channel is built from settings at wiring time
and given to the notification duty by name; it never sees the store: it gets a `Notice` (everything it
needs to write one message) and answers with a reference to what it sent, or raises `ChannelError`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

DECISION_TOPICS = frozenset({"request.approved", "request.rejected", "request.cancelled", "request.expired"})
# What settles a request's open question: a decision, or a break-glass request's review. Its requester
# is told, and what a channel sent about the request before is updated to say so.
SETTLED_TOPICS = DECISION_TOPICS | {"request.break_glass_reviewed"}


@dataclass(frozen=True)
class Subject:
    """What the event is about, read once by the core (`subjects.py`)."""

    request_id: str | None
    grant_id: str | None
    requester_name: str
    requester_email: str
    resources: list[str]  # resource paths (the first 20)
    resource_count: int
    permission: str
    duration: str | None
    reason: str | None
    flow: str | None
    state: str  # the request's (or grant's) public state now
    decided_by: str | None  # who approved or rejected, when decided
    decision_reason: str | None
    ends_at: datetime | None  # of the grant, for warnings
    break_glass: bool  # the request was self-approved in an emergency
    portal_url: str | None  # an absolute link into the portal (/requests/{id}), from SLUICE_PUBLIC_URL
    # a break-glass request's review, once one is made: who (a name), "ok" or "revoke", and why
    reviewed_by: str | None = None
    review_outcome: str | None = None
    review_reason: str | None = None


@dataclass(frozen=True)
class Notice:
    notification_id: str  # unique and stable across retries: the receiver's idempotency key
    topic: str  # the audit action, e.g. "request.created"
    event_id: int
    channel: str
    recipient_email: str | None  # a person: approver, requester, owner
    recipient_identity_id: str | None
    destination: str | None  # a shared target: "#db-access", a Teams destination's name
    role: str  # why this recipient hears it: "approver" | "requester" | "owner" | "channel"
    subject: Subject
    # the references of notifications already delivered to this recipient on this channel about the
    # same request (so a channel can update them)
    earlier: list[str]
    reason: str | None = None  # the event's own reason (why a grant ended, who was asked on escalation)


class ChannelError(Exception):
    """Sending failed. Retryable errors are tried again with backoff; others are given up at once."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    name: str  # "slack" | "email" | "teams"

    def send(self, notice: Notice) -> str | None:
        """Send one message; returns the new reference (or None). Raises `ChannelError`. Called
        outside any transaction."""
        ...
