"""What each event type carries: the data its JSON Schema (`events/schemas.py`) and `docs/events.md`
are made from.

Adding an event type is two lines: its `Action` member in `events/audit.py`, and one `EventType`
entry below naming what it is about (`subject`), the detail keys it always carries (`required`) and
the ones it may carry (`optional`). A detail key's own shape is in `DETAIL_SHAPES`, once for every
event; a new key is added there (and to `audit.ALLOWED_DETAILS`). A test fails while an `Action` has
no entry, and while `docs/events.md` differs from what `sluice.events.schemas` renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluice.events.audit import ALLOWED_DETAILS, Action

_TEXT: dict[str, Any] = {"type": "string"}
_TEXT_OR_NULL: dict[str, Any] = {"type": ["string", "null"]}
_TIME_OR_NULL: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_TEXTS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}

# The shape of every detail key an event may carry (the audit allow-list), with what it means.
DETAIL_SHAPES: dict[str, dict[str, Any]] = {
    "request_id": {**_TEXT_OR_NULL, "description": "the request (null for an automatic grant)"},
    "grant_id": {**_TEXT_OR_NULL, "description": "the grant (null when none is known)"},
    "grantee": {**_TEXT, "description": "email of the person who holds (or held) the access"},
    "requester": {**_TEXT, "description": "email of the person who asked"},
    "resource": {**_TEXT, "description": "the resource's path, e.g. prod-pg/appdb/public/orders"},
    "resources": {**_TEXTS, "description": "resource paths"},
    "permission": {**_TEXT, "description": "the permission, e.g. read"},
    "permissions": {**_TEXTS, "description": "permissions"},
    "flow": {**_TEXT, "description": "the access flow"},
    "duration": {**_TEXT, "description": "a duration, e.g. 2h or 1d"},
    "starts_at": {**_TIME_OR_NULL, "description": "when the access starts"},
    "ends_at": {**_TIME_OR_NULL, "description": "when the access (or session) ends"},
    "principal": {**_TEXT_OR_NULL, "description": "the name Sluice uses in the target (never a secret)"},
    "integration": {**_TEXT, "description": "the integration"},
    "error": {**_TEXT, "description": "what went wrong, in words (at most 500 characters)"},
    "attempts": {**_COUNT, "description": "attempts so far"},
    "created": {**_TEXTS, "description": "what was added"},
    "changed": {**_TEXTS, "description": "the fields that changed"},
    "removed": {
        "anyOf": [_TEXTS, _COUNT],
        "description": "what was removed (names), or how many",
    },
    "kind": {**_TEXT, "description": "the kind of object (flow, bundle, identity, group, …) or method"},
    "name": {**_TEXT, "description": "the object's name"},
    "admin": {"type": "boolean", "description": "whether it carries administrator rights"},
    "counts": {"type": "object", "description": "how many of each, by what"},
    "state": {**_TEXT, "description": "the public state it is now in"},
    "grantee_of": {**_TEXT_OR_NULL, "description": "who the access is for, when asked for someone else"},
    "choice": {**_TEXT, "description": "why this flow carries the request, in words"},
    "tier": {**_COUNT, "description": "the escalation tier"},
    "approvers": {**_TEXTS, "description": "emails of the people newly asked to approve"},
    "head": {**_TEXT, "pattern": "^[0-9]+:[0-9a-f]+$", "description": "the audit chain's head, SEQ:HASH"},
    "role": {**_TEXT, "description": "a role: user, auditor, operator or admin"},
    "token_id": {**_TEXT, "description": "an API token's id (never the token)"},
    "scopes": {**_TEXT, "description": "an API token's scopes, comma-separated"},
    "expires_at": {**_TIME_OR_NULL, "description": "when an API token ends (null: never)"},
    "owner": {**_TEXT, "description": "email of the administrator answerable for it"},
    "via": {**_TEXT, "description": "the token or session an API caller acted through"},
    "worker": {**_TEXT, "description": "the worker (host:pid) that acted"},
    "previous_worker": {**_TEXT_OR_NULL, "description": "the worker whose claim lapsed"},
    "source": {**_TEXT, "description": "the directory source, e.g. config, scim:okta, ldap:corp"},
    "break_glass": {"type": "boolean", "const": True, "description": "the request is a break-glass one"},
    "incident": {**_TEXT, "description": "the incident reference a break-glass request names"},
    "outcome": {**_TEXT, "enum": ["ok", "revoke"], "description": "a break-glass review's outcome"},
}


@dataclass(frozen=True)
class EventType:
    summary: str
    subject: tuple[str, ...]  # the subject types it is about; empty: any
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = field(default=())


_GRANT_END = ("request_id", "grantee", "resource", "permission")
_OBJECT = ("kind", "name")

EVENT_TYPES: dict[Action, EventType] = {
    Action.REQUEST_CREATED: EventType(
        "Someone asked for access.",
        ("request",),
        ("requester", "flow", "resources", "permissions", "duration", "choice"),
        ("grantee_of", "starts_at"),
    ),
    Action.REQUEST_APPROVED: EventType(
        "A request has every approval it needs (or its flow needs none); its grants start.",
        ("request",),
        ("flow",),
        ("requester",),
    ),
    Action.REQUEST_APPROVAL_RECORDED: EventType(
        "An approver approved; the request still waits for more approvals.",
        ("request",),
        ("flow", "requester"),
    ),
    Action.REQUEST_REJECTED: EventType("An approver rejected a request.", ("request",), ("requester",)),
    Action.REQUEST_CANCELLED: EventType(
        "A pending or approved request was cancelled (by its requester, or by Sluice when it can no "
        "longer be granted).",
        ("request",),
        (),
        ("resources",),
    ),
    Action.REQUEST_EXPIRED: EventType("Nobody decided on a request in time.", ("request",)),
    Action.REQUEST_ESCALATED: EventType(
        "Nobody acted in time; more approvers are asked.",
        ("request",),
        ("flow", "requester", "approvers"),
    ),
    Action.REQUEST_REMINDER: EventType(
        "A request still waits; the approvers who can decide are reminded (the flow's remind_after).",
        ("request",),
        ("flow", "requester", "approvers"),
    ),
    Action.REQUEST_BREAK_GLASS: EventType(
        "Someone opened emergency access and approved it themself; every approver is told, and it "
        "awaits review.",
        ("request",),
        ("requester", "flow", "resources", "permissions", "duration", "choice", "break_glass", "incident"),
        ("grantee_of", "starts_at"),
    ),
    Action.REQUEST_BREAK_GLASS_REVIEWED: EventType(
        "An approver reviewed a break-glass request; with outcome revoke its access ends at once.",
        ("request",),
        ("requester", "flow", "break_glass", "incident", "outcome"),
    ),
    Action.GRANT_ENDING_SOON: EventType(
        "A grant ends soon (a warning to its holder).",
        ("grant",),
        ("request_id", "grantee", "resource", "ends_at"),
    ),
    Action.GRANT_EXTENDED: EventType(
        "A grant's end time was moved later.",
        ("grant",),
        ("request_id", "grantee", "ends_at", "duration"),
    ),
    Action.CREDENTIALS_REVEALED: EventType(
        "A grant's credentials were shown (to its holder).",
        ("grant",),
        ("request_id", "resource", "principal"),
    ),
    Action.GRANT_NO_LONGER_ELIGIBLE: EventType(
        "No flow allows a live grant any more (directory, inventory or policy changed); it is revoked.",
        ("grant",),
        _GRANT_END,
    ),
    Action.AUTOMATIC_GRANTED: EventType(
        "An automatic flow granted access.",
        ("grant",),
        ("flow", "grantee", "resource", "permission"),
        ("ends_at",),
    ),
    Action.GRANT_ACTIVATED: EventType(
        "The access exists in the target.",
        ("grant",),
        ("request_id", "resource", "grantee", "permission", "principal", "ends_at"),
    ),
    Action.GRANT_FAILED: EventType(
        "Creating the access in the target failed; it is retried with backoff (or ended when it can "
        "never succeed).",
        ("grant",),
        ("request_id", "resource", "attempts", "error"),
    ),
    Action.GRANT_EXPIRED: EventType("A grant's end time passed; it is revoked.", ("grant",), _GRANT_END),
    Action.GRANT_REVOKE_REQUESTED: EventType(
        "A grant is to be revoked early (revoked, cancelled, or could not be granted).",
        ("grant",),
        _GRANT_END,
    ),
    Action.GRANT_REVOKED: EventType(
        "The access is gone from the target.",
        ("grant",),
        ("request_id", "resource", "grantee", "permission", "principal", "ends_at"),
    ),
    Action.GRANT_REVOKE_FAILED: EventType(
        "Removing the access from the target failed; it is retried with backoff, forever.",
        ("grant",),
        ("request_id", "resource", "attempts", "error"),
    ),
    Action.GRANT_REVOKE_STUCK: EventType(
        "A revoke has failed for longer than the window (public state revoke_failed); still retried.",
        ("grant",),
        ("request_id", "resource", "grantee", "principal", "integration", "attempts", "error", "state"),
    ),
    Action.GRANT_RECONCILED: EventType(
        "`sluice reconcile` repaired a grant the target disagreed with.",
        ("grant",),
        ("request_id", "principal", "integration"),
        ("state",),
    ),
    Action.GRANT_CLAIM_TAKEN_OVER: EventType(
        "A worker's claim on a grant lapsed (it died or hung); another worker took it over.",
        ("grant",),
        ("request_id", "resource", "integration", "worker", "previous_worker"),
    ),
    Action.ORPHAN_REMOVED: EventType(
        "Something Sluice manages in a target had no live grant and was removed.",
        ("integration",),
        ("integration", "principal", "grant_id"),
    ),
    Action.INTEGRATION_GRANTS_REVOKED: EventType(
        "The emergency stop: every live grant of an integration is revoked.",
        ("integration",),
        ("integration", "counts"),
    ),
    Action.INTEGRATION_RETIRING: EventType(
        "An integration is being retired: no new requests, every live grant revoked.",
        ("integration",),
        ("integration", "counts"),
    ),
    Action.INTEGRATION_RETIRED: EventType(
        "A retired integration's leftovers are removed from the target.",
        ("integration",),
        ("integration", "removed", "counts"),
    ),
    Action.CONFIG_APPLIED: EventType("`sluice apply` applied a config file.", ("config",), ("counts",)),
    Action.OBJECT_CREATED: EventType("An object was created.", (), _OBJECT, ("changed", "source")),
    Action.OBJECT_CHANGED: EventType(
        "An object was changed.", (), _OBJECT, ("changed", "source", "created", "removed")
    ),
    Action.OBJECT_REMOVED: EventType("An object was removed.", (), _OBJECT, ("source", "counts")),
    Action.TOKEN_CREATED: EventType(
        "An API token (or a SCIM token) was created; never the token itself.",
        ("identity", "scim_source"),
        (),
        ("name", "role", "scopes", "expires_at", "token_id", "admin", "source"),
    ),
    Action.TOKEN_REVOKED: EventType("An API token was revoked.", ("identity",), ("name", "token_id")),
    Action.SERVICE_ACCOUNT_CREATED: EventType(
        "A service account was created.", ("identity",), ("name", "role", "owner")
    ),
    Action.SERVICE_ACCOUNT_DISABLED: EventType(
        "A service account was disabled, with every token of it.", ("identity",), ("name",)
    ),
    Action.SIGNED_IN: EventType(
        "Someone signed in (portal, CLI or device flow).", ("identity",), ("kind", "admin", "ends_at")
    ),
    Action.SIGNED_OUT: EventType(
        "A sign-in session ended (or, with kind all, every session of a person).",
        ("identity",),
        ("kind",),
        ("removed",),
    ),
    Action.SIGN_IN_REFUSED: EventType("A sign-in was refused.", ("sign-in",), ("error",)),
    Action.DIRECTORY_CONFLICT: EventType(
        "A directory source tried to change what another source owns; nothing changed.",
        (),
        ("kind", "name", "source"),
    ),
    Action.DIRECTORY_SYNCED: EventType(
        "A directory (LDAP) was read and applied.", ("directory_source",), ("source", "counts")
    ),
    Action.DIRECTORY_SYNC_FAILED: EventType(
        "A directory (LDAP) could not be read; nothing changed.", ("directory_source",), ("source",)
    ),
    Action.INVENTORY_SYNCED: EventType(
        "An integration's inventory was discovered and stored.", ("integration",), ("integration", "counts")
    ),
    Action.INVENTORY_SYNC_FAILED: EventType(
        "An integration's inventory could not be discovered.", ("integration",), ("integration", "error")
    ),
    Action.TAGS_CHANGED: EventType(
        "Tags were injected or removed through the API.", ("resource", "inventory"), ("counts",)
    ),
    Action.AUDIT_HEAD: EventType(
        "The audit chain's head, exported so that a rewrite of the log is detectable.",
        ("audit",),
        ("head",),
    ),
    Action.WEBHOOK_TEST: EventType(
        "A test ping (`sluice webhooks test`), sent only to the webhook it tests.",
        ("webhook",),
        ("name",),
    ),
}


def unknown_detail_keys() -> set[str]:
    """Detail keys an entry names that the audit allow-list does not (should be none)."""
    named = {key for entry in EVENT_TYPES.values() for key in (*entry.required, *entry.optional)}
    return (named | set(DETAIL_SHAPES)) - ALLOWED_DETAILS
