"""slack seen requests

Revision ID: 3f6a2c9d8e14
Revises: e3a7c5d91f28
Create Date: 2026-12-01 03:45:00.000000

The signatures of requests from Slack already acted on, kept until their timestamp is too old to be
accepted anyway, so a replayed request is refused by every server.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3f6a2c9d8e14"
down_revision: str | Sequence[str] | None = "e3a7c5d91f28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.create_table(
        "slack_seen_requests",
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_slack_seen_requests")),
    )
    op.create_index(
        op.f("ix_slack_seen_requests_expires_at"), "slack_seen_requests", ["expires_at"], unique=False
    )


def downgrade() -> None:
    _timeouts()
    op.drop_index(op.f("ix_slack_seen_requests_expires_at"), table_name="slack_seen_requests")
    op.drop_table("slack_seen_requests")
