"""integration lifecycle: disabled, retiring, retired

Revision ID: 9b4e2d7c1a05
Revises: 5e1d0c7a9b31
Create Date: 2026-12-01 00:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b4e2d7c1a05"
down_revision: str | Sequence[str] | None = "5e1d0c7a9b31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    with op.batch_alter_table("integrations") as batch:
        batch.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False))
        batch.add_column(
            sa.Column("lifecycle", sa.String(length=20), server_default="active", nullable=False)
        )
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("retire_error", sa.Text(), nullable=True))


def downgrade() -> None:
    _timeouts()
    with op.batch_alter_table("integrations") as batch:
        batch.drop_column("retire_error")
        batch.drop_column("retired_at")
        batch.drop_column("lifecycle")
        batch.drop_column("disabled")
