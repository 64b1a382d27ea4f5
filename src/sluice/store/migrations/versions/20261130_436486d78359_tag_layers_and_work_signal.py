"""tag layers and work signal

Revision ID: 436486d78359
Revises: a7c3e9d14b20
Create Date: 2026-11-30 21:40:00.000000

A resource tag keeps the value discovered in the target under an injected one
(`resource_tags.discovered_value`), so removing the injected value brings the discovered one back.
Existing discovered tags get their value copied; a discovered value an injected one replaced before
this revision is read again by the next sync.

`work_signal` is a one-row counter that every change raises on SQLite, so a worker in another process
notices it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "436486d78359"
down_revision: str | Sequence[str] | None = "a7c3e9d14b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock rather than queue every other query behind
    this migration, and stop any statement after 60s. `SET LOCAL` lasts until this migration's
    transaction ends; an `autocommit_block()` needs to set them again."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    with op.batch_alter_table("resource_tags") as batch:
        batch.add_column(sa.Column("discovered_value", sa.String(length=500), nullable=True))
    op.execute("UPDATE resource_tags SET discovered_value = value WHERE source = 'discovered'")
    op.create_table(
        "work_signal",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_signal")),
    )


def downgrade() -> None:
    _timeouts()
    op.drop_table("work_signal")
    # Back to one value per key: the effective value stays, the discovered layer under it is dropped.
    with op.batch_alter_table("resource_tags") as batch:
        batch.drop_column("discovered_value")
