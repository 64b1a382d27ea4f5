"""requests by requester

Revision ID: c7d2e9a4b113
Revises: e5a1c3f7b902
Create Date: 2026-12-01 05:00:00.000000

The approvals inbox reads each waiting requester's latest requests; an index on (requester, time)
keeps that a range read per person however many requests the store holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "c7d2e9a4b113"
down_revision: str | Sequence[str] | None = "e5a1c3f7b902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.create_index("ix_requests_requester_created", "requests", ["requester_id", "created_at"])


def downgrade() -> None:
    _timeouts()
    op.drop_index("ix_requests_requester_created", table_name="requests")
