"""Every transition and admin change writes an audit event, and in the same transaction an outbox
row for webhooks. What goes into an event is an allow-listed projection: a secret cannot leak into
one because nothing that is not named here is copied."""

from __future__ import annotations

import itertools
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from sluice.events import chain, pairs  # noqa: F401 (chain and write every audit event as it is flushed)
from sluice.store.tables import AuditEvent, OutboxMessage

# Events recorded in one transaction take their places in the chain in the order they were recorded.
_recorded = itertools.count()

# Which token or session an API request acts through. The server's edge opens a holder for each
# request (`acting_through`); authentication fills it (`acting_via`), and every event the request
# records carries it as `via`. A holder, not a value: authentication runs in another thread's copy of
# the context, and the copies share the holder.
_via: ContextVar[dict[str, str] | None] = ContextVar("sluice_audit_via", default=None)


def acting_through() -> Token[dict[str, str] | None]:
    return _via.set({})


def done_acting(token: Token[dict[str, str] | None]) -> None:
    _via.reset(token)


def acting_via(via: str) -> None:
    holder = _via.get()
    if holder is not None:
        holder["via"] = via


class Action(StrEnum):
    REQUEST_CREATED = "request.created"
    REQUEST_APPROVED = "request.approved"
    REQUEST_APPROVAL_RECORDED = "request.approval_recorded"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_CANCELLED = "request.cancelled"
    REQUEST_EXPIRED = "request.expired"
    REQUEST_ESCALATED = "request.escalated"
    REQUEST_REMINDER = "request.reminder"  # a pending request's approvers are reminded (notify.remind_after)
    REQUEST_BREAK_GLASS = "request.break_glass"  # made and approved by its requester in an emergency
    REQUEST_BREAK_GLASS_REVIEWED = "request.break_glass_reviewed"
    GRANT_ENDING_SOON = "grant.ending_soon"
    GRANT_EXTENDED = "grant.extended"
    CREDENTIALS_REVEALED = "grant.credentials_revealed"  # the grantee was shown the secret
    GRANT_NO_LONGER_ELIGIBLE = "grant.no_longer_eligible"
    AUTOMATIC_GRANTED = "grant.automatic"
    GRANT_ACTIVATED = "grant.activated"
    GRANT_FAILED = "grant.attempt_failed"
    GRANT_EXPIRED = "grant.expired"
    GRANT_REVOKE_REQUESTED = "grant.revoke_requested"
    GRANT_REVOKED = "grant.revoked"
    GRANT_REVOKE_FAILED = "grant.revoke_attempt_failed"
    GRANT_REVOKE_STUCK = "grant.revoke_failed"  # failing longer than the window; still retried
    GRANT_RECONCILED = "grant.reconciled"
    GRANT_CLAIM_TAKEN_OVER = "grant.claim_taken_over"  # its worker's claim lapsed; another took it
    ORPHAN_REMOVED = "target.orphan_removed"
    INTEGRATION_GRANTS_REVOKED = "integration.grants_revoked"  # the emergency stop: every live grant
    INTEGRATION_RETIRING = "integration.retiring"
    INTEGRATION_RETIRED = "integration.retired"
    CONFIG_APPLIED = "config.applied"
    OBJECT_CREATED = "admin.created"
    OBJECT_CHANGED = "admin.changed"
    OBJECT_REMOVED = "admin.removed"
    TOKEN_CREATED = "token.created"  # noqa: S105 (an event name, not a secret)
    TOKEN_REVOKED = "token.revoked"  # noqa: S105 (an event name, not a secret)
    SERVICE_ACCOUNT_CREATED = "service_account.created"
    SERVICE_ACCOUNT_DISABLED = "service_account.disabled"
    SIGNED_IN = "auth.signed_in"
    SIGNED_OUT = "auth.signed_out"
    SIGN_IN_REFUSED = "auth.sign_in_refused"
    DIRECTORY_CONFLICT = "directory.conflict"  # a source tried to write what another source owns
    DIRECTORY_SYNCED = "directory.synced"  # a directory source (LDAP) was read and applied
    DIRECTORY_SYNC_FAILED = "directory.sync_failed"  # it could not be read; nothing changed
    INVENTORY_SYNCED = "inventory.synced"
    INVENTORY_SYNC_FAILED = "inventory.sync_failed"
    TAGS_CHANGED = "inventory.tags_changed"
    AUDIT_HEAD = "audit.head"  # the chain's head, exported so that a rewrite of the log is detectable
    WEBHOOK_TEST = "webhook.test"  # a test ping, sent only to the webhook it tests


# The only detail keys an audit event or webhook may carry. Values must be plain data.
ALLOWED_DETAILS = frozenset(
    {
        "request_id",
        "grant_id",
        "grantee",
        "requester",
        "resource",
        "resources",
        "permission",
        "permissions",
        "flow",
        "duration",
        "starts_at",
        "ends_at",
        "principal",
        "integration",
        "error",
        "attempts",
        "created",
        "changed",
        "removed",
        "kind",
        "name",
        "admin",
        "counts",
        "state",
        "grantee_of",
        "choice",
        "tier",
        "approvers",  # emails of the people a request.escalated event newly asks
        "head",  # an audit.head event's SEQ:HASH
        "role",  # a new token's role
        "token_id",  # an API token's id (never the token itself)
        "scopes",  # an API token's scopes
        "expires_at",  # when an API token ends
        "owner",  # the admin answerable for a service account
        "via",  # the token or session an API caller acted through, e.g. token:tok_3f9a0c1d2e4b
        "worker",  # the worker id (host:pid) that took over a claim
        "previous_worker",  # the worker whose claim lapsed
        "source",  # the directory source (config, scim:okta) an event is about
        "break_glass",  # true on a break-glass request's events
        "incident",  # the incident reference a break-glass request names
        "outcome",  # a break-glass review's outcome: ok or revoke
    }
)


@dataclass(slots=True)
class NewEvent:
    """An audit event checked and ready to write: through the ORM (`record`) or, for a pass that
    writes many, with its outbox row in bulk (`events/audit_batch.record_many`)."""

    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: dict[str, Any]
    seq: int | None = None  # its place in the chain, given when it is written (events/chain.py)
    prev_hash: str | None = None
    hash: str | None = None

    def payload(self) -> dict[str, Any]:
        """What its outbox row carries for webhooks."""
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "reason": self.reason,
            "details": self.details,
        }


def new_event(
    *,
    now: datetime,
    actor: str,
    action: Action,
    subject_type: str,
    subject_id: str,
    reason: str | None = None,
    **details: Any,
) -> NewEvent:
    """An event with only allow-listed details, naming the token or session the caller acts through."""
    holder = _via.get()
    if holder and "via" in holder and "via" not in details:
        details["via"] = holder["via"]
    unknown = set(details) - ALLOWED_DETAILS
    if unknown:
        raise ValueError(f"audit details not on the allow-list: {sorted(unknown)}")
    return NewEvent(now, actor, action.value, subject_type, subject_id, reason, details)


def record(
    session: Session,
    *,
    now: datetime,
    actor: str,
    action: Action,
    subject_type: str,
    subject_id: str,
    reason: str | None = None,
    **details: Any,
) -> AuditEvent:
    new = new_event(
        now=now,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        reason=reason,
        **details,
    )
    return record_event(session, new)


def record_event(session: Session, new: NewEvent) -> AuditEvent:
    """Add an event (and its outbox row) to the session: the caller's next flush writes and chains it."""
    event = AuditEvent(
        at=new.at,
        actor=new.actor,
        action=new.action,
        subject_type=new.subject_type,
        subject_id=new.subject_id,
        reason=new.reason,
        details=new.details,
    )
    event._recorded_order = next(_recorded)  # type: ignore[attr-defined]
    session.add(event)
    session.add(OutboxMessage(event=event, topic=new.action, payload=new.payload(), created_at=new.at))
    return event


def webhook_body(message: OutboxMessage) -> dict[str, Any]:
    """What a webhook receiver gets for an outbox row, in the Standard Webhooks envelope: the event
    type, when it happened, and the event (with the audit event's id, known only once the rows are
    written, so it is not stored in the payload). Its JSON Schema is `events/schemas.py`."""
    payload = message.payload
    return {
        "type": message.topic,
        "timestamp": payload["at"],
        "data": {
            "event_id": message.event_id,
            "actor": payload["actor"],
            "subject": payload["subject"],
            "reason": payload["reason"],
            "details": payload["details"],
        },
    }
