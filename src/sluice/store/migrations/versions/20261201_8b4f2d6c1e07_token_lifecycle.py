"""token lifecycle and service accounts

Revision ID: 8b4f2d6c1e07
Revises: b8d4f2a61c07
Create Date: 2026-12-01 00:30:00.000000

API tokens get a name (unique per owner), a display prefix, scopes, an expiry and a last-used time.
Tokens made before keep no name, no expiry and every scope their role allows. Service accounts get
their own table beside their identity row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8b4f2d6c1e07"
down_revision: str | Sequence[str] | None = "b8d4f2a61c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    # Plain ADD COLUMN and CREATE INDEX: no table rebuild on SQLite.
    op.add_column("api_tokens", sa.Column("name", sa.String(length=100), nullable=True))
    op.add_column(
        "api_tokens", sa.Column("display_prefix", sa.String(length=16), server_default="", nullable=False)
    )
    op.add_column(
        "api_tokens",
        sa.Column(
            "scopes", sa.String(length=100), server_default="admin,approve,read,request", nullable=False
        ),
    )
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_api_tokens_identity_name", "api_tokens", ["identity_id", "name"], unique=True)
    op.create_table(
        "service_accounts",
        sa.Column("identity_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_service_accounts_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_id", name=op.f("pk_service_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_service_accounts_name")),
    )


def downgrade() -> None:
    _timeouts()
    op.drop_table("service_accounts")
    op.drop_index("ix_api_tokens_identity_name", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
        batch.drop_column("display_prefix")
        batch.drop_column("name")
