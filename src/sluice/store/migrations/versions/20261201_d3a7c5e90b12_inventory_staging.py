"""inventory staging

Revision ID: d3a7c5e90b12
Revises: e3a7c5b90d12
Create Date: 2026-12-01 04:00:00.000000

An inventory sync writes what its connector lists into `inventory_staging` a chunk at a time and
compares it with `resources` in path order, so a sync of a million resources never holds them all in
memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d3a7c5e90b12"
down_revision: str | Sequence[str] | None = "e3a7c5b90d12"
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
        "inventory_staging",
        sa.Column("sync_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("integration_id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("parent_path", sa.String(length=1000), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("staged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["integration_id"],
            ["integrations.id"],
            name=op.f("fk_inventory_staging_integration_id_integrations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sync_id", "path", name=op.f("pk_inventory_staging")),
    )
    op.create_index(
        op.f("ix_inventory_staging_integration_id"), "inventory_staging", ["integration_id"], unique=False
    )


def downgrade() -> None:
    _timeouts()
    op.drop_index(op.f("ix_inventory_staging_integration_id"), table_name="inventory_staging")
    op.drop_table("inventory_staging")
