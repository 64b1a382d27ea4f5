"""resources remember the discovered tags their last sync listed

Revision ID: a4c8e1f37b59
Revises: f1b6d2a8c304
Create Date: 2026-12-02 06:00:00.000000

An inventory sync told an unchanged resource from a retagged one by gathering its discovered tag rows
into one text, per resource, a million times in a large sync: half the cost of its comparison. The
sync now keeps that text on the resource row when it writes the tags, and compares one column. Rows
from before this revision have none (NULL) and are compared through their tag rows, once: the sync
records their text as it goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4c8e1f37b59"
down_revision: str | Sequence[str] | None = "f1b6d2a8c304"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.add_column("resources", sa.Column("discovered_tags", sa.Text(), nullable=True))


def downgrade() -> None:
    _timeouts()
    # In place on SQLite too (3.35 and later): a batch rebuild would drop `resources`, and with it,
    # through their cascading keys, every tag and grant row that points at it.
    op.drop_column("resources", "discovered_tags")
