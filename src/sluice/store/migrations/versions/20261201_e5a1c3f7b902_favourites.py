"""favourites

Revision ID: e5a1c3f7b902
Revises: e5a1c3b7d902
Create Date: 2026-12-01 04:00:00.000000

A person's saved requests (units or a bundle, duration, reason), asked for again in one step.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5a1c3f7b902"
down_revision: str | Sequence[str] | None = "e5a1c3b7d902"
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
        "favourites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("bundle", sa.String(length=120), nullable=True),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_favourites_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_favourites")),
    )
    op.create_index("ix_favourites_identity_name", "favourites", ["identity_id", "name"], unique=True)


def downgrade() -> None:
    _timeouts()
    op.drop_index("ix_favourites_identity_name", table_name="favourites")
    op.drop_table("favourites")
