"""The tables. Business rules over them ("active grant", "due for work") live in `queries.py`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    func,
    insert,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from sluice.store.types import UTCDateTime, new_installation_id

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Installation(Base):
    """Who this store is toward the targets: one row, made with the schema, never changed. Every
    principal Sluice creates in a target carries this id, so two installations pointed at one server
    never take each other's principals for orphans (docs/connectors.md, *Installations*)."""

    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("only_row = 1", name="one_row"),)

    only_row: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    id: Mapped[str] = mapped_column(String(32))


@event.listens_for(Installation.__table__, "after_create")
def _new_installation(table: Table, connection: Connection, **_: object) -> None:
    """A store built from the models (rather than the migrations) gets its id as the migration gives
    it: once, when the table is made."""
    connection.execute(insert(table).values(only_row=1, id=new_installation_id()))


class Identity(Base):
    __tablename__ = "identities"
    # Emails are looked up case-insensitively (`queries.identity_by_email`): on every SCIM push too.
    __table_args__ = (Index("ix_identities_lower_email", func.lower(text("email"))),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    manager_email: Mapped[str | None] = mapped_column(String(320))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    source: Mapped[str] = mapped_column(String(40), default="config")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(40), default="config")


class GroupMember(Base):
    """A membership. `source` is `config` for directory members or `grant:<id>` for a temporary one
    that a built-in group grant created."""

    __tablename__ = "group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    identity_id: Mapped[str] = mapped_column(
        ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(60), primary_key=True)
    expires_at: Mapped[datetime | None]


class ApiToken(Base):
    """An API token: only its SHA-256 hash is kept, with a short non-secret `display_prefix` (the first
    characters of the token) to recognise it in lists. `name` is unique per owner (None for a token
    made by the store-side bootstrap before tokens had names); `expires_at` None means never."""

    __tablename__ = "api_tokens"
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table.
    __table_args__ = (Index("ix_api_tokens_identity_name", "identity_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="user", server_default="user")  # domain/roles.py
    name: Mapped[str | None] = mapped_column(String(100))
    display_prefix: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # domain/tokens.py, comma-separated; tokens older than scopes keep every scope their role allows
    scopes: Mapped[str] = mapped_column(String(100), server_default="admin,approve,read,request")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]  # written at most once a minute (services/directory/tokens.py)

    identity: Mapped[Identity] = relationship()


class Integration(Base):
    __tablename__ = "integrations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(60))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(320))
    sync_interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    last_sync_at: Mapped[datetime | None]
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    resource_count: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str] = mapped_column(String(40), default="config")
    # `disabled` comes from the config: no new requests, live grants run out. `lifecycle` is Sluice's:
    # active, retiring (grants being revoked, leftovers removed) or retired (history only).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    lifecycle: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    retired_at: Mapped[datetime | None]
    retire_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (Index("ix_resources_integration_type", "integration_id", "type"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(500))
    path: Mapped[str] = mapped_column(String(1000), unique=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("resources.id", ondelete="SET NULL"))
    deleted_at: Mapped[datetime | None]
    discovered_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The discovered tags as the last inventory sync listed them (`tags.encode_discovered`), so that
    # the next sync compares one text per resource instead of gathering its tag rows; NULL where no
    # sync has recorded them (rows from before the column, a resource that vanished), which sends
    # the sync to the tag rows. Only the sync writes the discovered layer, and it keeps this with it.
    discovered_tags: Mapped[str | None] = mapped_column(Text)

    integration: Mapped[Integration] = relationship()


class AccessFlow(Base):
    __tablename__ = "access_flows"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    spec: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(40), default="config")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AccessRequest(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_status_pending_until", "status", "pending_until"),
        Index("ix_requests_break_glass_reviewed_at", "break_glass", "reviewed_at"),
        Index("ix_requests_requester_created", "requester_id", "created_at"),  # a requester's latest
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("identities.id"))
    flow_name: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")
    duration_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    pending_until: Mapped[datetime | None]
    starts_at: Mapped[datetime | None]  # a future start asked for (a maintenance window); None: at once
    # approval tiers notified so far
    escalation_tier: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reminded_at: Mapped[datetime | None]  # when its approvers were last reminded (`notify.remind_after`)
    # Break-glass: approved by its requester in an emergency, then reviewed by an approver.
    break_glass: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    incident: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    review_reason: Mapped[str | None] = mapped_column(Text)
    review_outcome: Mapped[str | None] = mapped_column(String(20))  # "ok" | "revoke"

    requester: Mapped[Identity] = relationship()
    grants: Mapped[list[Grant]] = relationship(back_populates="request", order_by="Grant.id")
    approvals: Mapped[list[Approval]] = relationship(back_populates="request", order_by="Approval.created_at")


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    approver_id: Mapped[str] = mapped_column(ForeignKey("identities.id"))
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]

    request: Mapped[AccessRequest] = relationship(back_populates="approvals")
    approver: Mapped[Identity] = relationship()


class Grant(Base):
    """One access unit: identity x resource x permission. `desired` is what should be, `actual` what
    is known to be in the target; the worker picks rows where they differ."""

    __tablename__ = "grants"
    __table_args__ = (
        Index("ix_grants_work", "desired", "actual", "next_attempt_at"),
        Index("ix_grants_due", "desired", "ends_at"),
        Index("ix_grants_identity", "identity_id", "desired"),
        Index("ix_grants_principal", "principal"),
        Index("ix_grants_claimed_by", "claimed_by"),  # each worker's heartbeat renews its claims by it
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id"))
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"))
    resource_id: Mapped[str | None] = mapped_column(ForeignKey("resources.id", ondelete="SET NULL"))
    resource_path: Mapped[str] = mapped_column(String(1000))
    resource_type: Mapped[str] = mapped_column(String(60))
    permission: Mapped[str] = mapped_column(String(60))
    desired: Mapped[str] = mapped_column(String(20))
    actual: Mapped[str] = mapped_column(String(20))
    duration_seconds: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    principal: Mapped[str] = mapped_column(String(500))
    credentials: Mapped[str | None] = mapped_column(Text)
    connection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Since when the target work on this row keeps failing (cleared on success), and when a revoke was
    # declared `revoke_failed` for failing longer than the configured window (it is still retried).
    failing_since: Mapped[datetime | None]
    revoke_failed_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None]
    granted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)
    # When the revoke was decided: the end time for an expiry, the moment of asking for an early one.
    # Overdue revokes and the revocation lag are measured from here.
    revoke_requested_at: Mapped[datetime | None]
    flow_name: Mapped[str | None] = mapped_column(String(120), index=True)  # set for automatic grants
    extensions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    warned_at: Mapped[datetime | None]  # when the "ends soon" event was written
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    request: Mapped[AccessRequest | None] = relationship(back_populates="grants")
    identity: Mapped[Identity] = relationship()
    integration: Mapped[Integration] = relationship()


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60), index=True)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(200), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The event's place in the store's hash chain (events/chain.py); empty for events written before
    # the store kept one.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class AuditChain(Base):
    """The head of the audit hash chain: one row, locked by each transaction that adds events."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditStreamCursor(Base):
    """How far one audit sink (syslog, a JSON-lines file) has taken the chain (events/stream.py)."""

    __tablename__ = "audit_stream_cursors"

    sink: Mapped[str] = mapped_column(String(300), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A webhook payload written in the same transaction as its audit event; delivered later."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("audit_events.id", ondelete="CASCADE"))
    # Set with the event object, so both rows are written in the caller's next flush (batched).
    event: Mapped[AuditEvent] = relationship()
    topic: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the notification core turned the row into notifications (its own cursor, apart from the
    # webhooks' `delivered_at`, so each reads the outbox once).
    notified_at: Mapped[datetime | None] = mapped_column(index=True)


class Webhook(Base):
    """A receiver of events, declared in the config file. `secret_env` names the environment variable
    holding the HMAC key (read by the worker when it delivers); the key itself is never stored. While
    it keeps failing (`failures` in a row) nothing is sent to it before `retry_at`."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret_env: Mapped[str] = mapped_column(String(200))
    topics: Mapped[list[str]] = mapped_column(JSON)  # glob patterns over event topics
    source: Mapped[str] = mapped_column(String(40), default="config")
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookDelivery(Base):
    """One outbox row to one webhook. The worker fans each outbox row out into these (and then sets the
    outbox row's `delivered_at`); `next_attempt_at` is set while the delivery is still to be made (and
    is the claim lease while a worker makes it), NULL once it was delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_webhook_due", "webhook_id", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    gave_up_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None]  # the HTTP status of the last attempt's answer; NULL: none came
    created_at: Mapped[datetime]

    outbox: Mapped[OutboxMessage] = relationship()
    webhook: Mapped[Webhook] = relationship()


class Notification(Base):
    """One outbox row to one recipient on one channel (email, Slack, Teams). The UNIQUE key makes the
    fan-out idempotent; `next_attempt_at` is set while it is still to be sent (and is the lease while a
    worker sends it), NULL once delivered or given up. `reference` is what the channel says identifies
    the message it sent, so later events about the same request can update it."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint(
            "outbox_id", "recipient", "channel", name="uq_notifications_outbox_recipient_channel"
        ),
        Index("ix_notifications_channel_due", "channel", "next_attempt_at"),
        Index("ix_notifications_request_recipient", "request_id", "recipient", "channel"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(320))  # an identity id, or "slack:#db", "teams:db"
    role: Mapped[str] = mapped_column(String(20))  # approver, requester, owner, channel
    request_id: Mapped[str | None] = mapped_column(String(32))
    grant_id: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    gave_up_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    reference: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]

    outbox: Mapped[OutboxMessage] = relationship()


class SealingKey(Base):
    """The fingerprint (never the key) of each secret key that may have sealed a value in this store.
    A process starts only if it holds every key listed here, so a server and a worker with different
    keys cannot both run on one store; `sluice keys rotate` leaves only the current key."""

    __tablename__ = "sealing_keys"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    added_at: Mapped[datetime]


# Tags, bundles and scopes, the people tables and the work signal live in their own modules;
# importing them here completes the metadata.
from sluice.store import auth_tables as _auth_tables  # noqa: E402,F401
from sluice.store import directory_tables as _directory_tables  # noqa: E402,F401
from sluice.store import favourite_tables as _favourite_tables  # noqa: E402,F401
from sluice.store import people_tables as _people_tables  # noqa: E402,F401
from sluice.store import scim_tables as _scim_tables  # noqa: E402,F401
from sluice.store import slack_tables as _slack_tables  # noqa: E402,F401
from sluice.store import targeting_tables as _targeting_tables  # noqa: E402,F401
from sluice.store import work_signal as _work_signal  # noqa: E402,F401
