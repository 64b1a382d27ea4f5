"""inventory staging, clustered by its key

Revision ID: f1b6d2a8c304
Revises: c7d2e9a4b113
Create Date: 2026-12-01 06:00:00.000000

An inventory sync writes a row per listed resource into `inventory_staging`, reads them back in path
order and deletes them: a million of each in a large sync. The index on `integration_id` served only
the removal of rows a crashed sync left behind, once per sync over a table that is empty between
syncs, yet every staged row was written into it and deleted from it; it goes. On SQLite the table is
rebuilt WITHOUT ROWID, so the rows live in their primary key's order: one B-tree written per row
instead of two, and the walk in path order reads them in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1b6d2a8c304"
down_revision: str | Sequence[str] | None = "c7d2e9a4b113"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def _columns() -> list[sa.schema.SchemaItem]:
    return [
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
            name="fk_inventory_staging_integration_id_integrations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sync_id", "path", name="pk_inventory_staging"),
    ]


def _rebuild_on_sqlite(*, with_rowid: bool) -> None:
    """SQLite cannot change a table's storage in place: build the new one, move the rows (those of a
    sync running now), swap."""
    if op.get_context().dialect.name != "sqlite":
        return
    op.create_table("inventory_staging_new", *_columns(), sqlite_with_rowid=with_rowid)
    op.execute("INSERT INTO inventory_staging_new SELECT * FROM inventory_staging")
    op.drop_table("inventory_staging")
    op.rename_table("inventory_staging_new", "inventory_staging")


def upgrade() -> None:
    _timeouts()
    op.drop_index("ix_inventory_staging_integration_id", table_name="inventory_staging")
    _rebuild_on_sqlite(with_rowid=False)


def downgrade() -> None:
    _timeouts()
    _rebuild_on_sqlite(with_rowid=True)
    op.create_index("ix_inventory_staging_integration_id", "inventory_staging", ["integration_id"])
