"""When a revoke was decided, and the fingerprints of the keys that sealed the store's secrets.

`grants.revoke_requested_at` is what overdue revokes and the revocation lag are measured from (an
early revoke has not reached its end time); `ix_grants_claimed_by` serves each worker's heartbeat.
`sealing_keys` lets a process with another secret key refuse to start instead of failing on every
credential it cannot open.

Revision ID: 5e2c9a71d3f4
Revises: 436486d78359
Create Date: 2026-11-30 21:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e2c9a71d3f4"
down_revision: str | Sequence[str] | None = "436486d78359"
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
    op.add_column("grants", sa.Column("revoke_requested_at", sa.DateTime(timezone=True), nullable=True))
    # Revokes decided before this column existed: the end time for an expiry, else the last change.
    op.execute(
        "UPDATE grants SET revoke_requested_at = CASE WHEN ends_at IS NOT NULL AND ends_at < updated_at "
        "THEN ends_at ELSE updated_at END WHERE desired = 'revoked'"
    )
    op.create_index("ix_grants_claimed_by", "grants", ["claimed_by"], unique=False)
    op.create_table(
        "sealing_keys",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_sealing_keys")),
    )


def downgrade() -> None:
    _timeouts()
    op.drop_table("sealing_keys")
    op.drop_index("ix_grants_claimed_by", table_name="grants")
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("revoke_requested_at")
