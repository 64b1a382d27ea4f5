"""webhook deliveries keep the HTTP status of their last attempt

Revision ID: e5a1c3b7d902
Revises: d3a7c5e90b12
Create Date: 2026-12-01 04:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c3b7d902"
down_revision: str | Sequence[str] | None = "d3a7c5e90b12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.add_column("webhook_deliveries", sa.Column("last_status", sa.Integer(), nullable=True))


def downgrade() -> None:
    _timeouts()
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("last_status")
