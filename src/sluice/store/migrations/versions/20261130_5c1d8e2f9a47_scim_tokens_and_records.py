"""SCIM tokens and records, and identities found by lower(email)

Revision ID: 5c1d8e2f9a47
Revises: c41d7e2a9f60
Create Date: 2026-11-30 22:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d8e2f9a47"
down_revision: str | Sequence[str] | None = "c41d7e2a9f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock rather than queue every other query behind
    this migration, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_scim_tokens_token_hash")),
    )
    op.create_index(op.f("ix_scim_tokens_source"), "scim_tokens", ["source"], unique=False)
    op.create_table(
        "scim_records",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("external_id", sa.String(length=320), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_records")),
    )
    op.create_index(
        "ix_scim_records_source_kind_external_id",
        "scim_records",
        ["source", "kind", "external_id"],
        unique=False,
    )
    op.create_index(
        "ix_scim_records_source_kind_key", "scim_records", ["source", "kind", "key"], unique=False
    )
    # identities are looked up by lower(email) on every SCIM push
    op.create_index("ix_identities_lower_email", "identities", [sa.text("lower(email)")], unique=False)


def downgrade() -> None:
    _timeouts()
    op.drop_index("ix_identities_lower_email", table_name="identities")
    op.drop_index("ix_scim_records_source_kind_key", table_name="scim_records")
    op.drop_index("ix_scim_records_source_kind_external_id", table_name="scim_records")
    op.drop_table("scim_records")
    op.drop_index(op.f("ix_scim_tokens_source"), table_name="scim_tokens")
    op.drop_table("scim_tokens")
