"""notifications

Revision ID: e3a7c5d91f28
Revises: 8b4f2d6c1e07
Create Date: 2026-12-01 03:45:00.000000

One row per (outbox row, recipient, channel) for email, Slack and Teams; the outbox gets its own cursor
for them (`notified_at`), set for every row already written so that upgrading sends nothing about the
past; requests remember when their approvers were last reminded.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3a7c5d91f28"
down_revision: str | Sequence[str] | None = "8b4f2d6c1e07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.add_column("outbox", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE outbox SET notified_at = created_at")
    op.create_index(op.f("ix_outbox_notified_at"), "outbox", ["notified_at"], unique=False)
    op.add_column("requests", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=60), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("grant_id", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("reference", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_notifications_outbox_id_outbox"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "outbox_id", "recipient", "channel", name="uq_notifications_outbox_recipient_channel"
        ),
    )
    op.create_index("ix_notifications_channel_due", "notifications", ["channel", "next_attempt_at"])
    op.create_index(
        "ix_notifications_request_recipient", "notifications", ["request_id", "recipient", "channel"]
    )
    op.create_index(op.f("ix_notifications_next_attempt_at"), "notifications", ["next_attempt_at"])


def downgrade() -> None:
    _timeouts()
    op.drop_index(op.f("ix_notifications_next_attempt_at"), table_name="notifications")
    op.drop_index("ix_notifications_request_recipient", table_name="notifications")
    op.drop_index("ix_notifications_channel_due", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("requests") as batch:
        batch.drop_column("reminded_at")
    op.drop_index(op.f("ix_outbox_notified_at"), table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("notified_at")
