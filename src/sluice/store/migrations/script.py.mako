"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock rather than queue every other query behind
    this migration, and stop any statement after 60s. `SET LOCAL` lasts until this migration's
    transaction ends; an `autocommit_block()` needs to set them again."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    _timeouts()
    ${downgrades if downgrades else "pass"}
