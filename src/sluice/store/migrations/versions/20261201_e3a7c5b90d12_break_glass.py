"""break-glass requests: the incident, and the review that follows

Revision ID: e3a7c5b90d12
Revises: 3f6a2c9d8e14
Create Date: 2026-12-01 03:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "e3a7c5b90d12"
down_revision: str | Sequence[str] | None = "3f6a2c9d8e14"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    # Plain ADD COLUMN works on both stores; batch mode would copy the table on SQLite for nothing.
    columns: list[sa.Column[Any]] = [
        sa.Column("break_glass", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("incident", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=320), nullable=True),
        sa.Column("review_reason", sa.Text(), nullable=True),
        sa.Column("review_outcome", sa.String(length=20), nullable=True),
    ]
    for column in columns:
        op.add_column("requests", column)
    op.create_index("ix_requests_break_glass_reviewed_at", "requests", ["break_glass", "reviewed_at"])


def downgrade() -> None:
    _timeouts()
    with op.batch_alter_table("requests") as batch:
        batch.drop_index("ix_requests_break_glass_reviewed_at")
        batch.drop_column("review_outcome")
        batch.drop_column("review_reason")
        batch.drop_column("reviewed_by")
        batch.drop_column("reviewed_at")
        batch.drop_column("incident")
        batch.drop_column("break_glass")
