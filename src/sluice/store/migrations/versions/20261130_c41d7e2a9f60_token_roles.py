"""token roles

Revision ID: c41d7e2a9f60
Revises: 7a3c91e4d5b2
Create Date: 2026-11-30 22:20:00.000000

A token's one admin bit becomes a role (user, auditor, operator, admin: domain/roles.py). Admin
tokens become role admin, every other token role user.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c41d7e2a9f60"
down_revision: str | Sequence[str] | None = "7a3c91e4d5b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timeouts() -> None:
    """On PostgreSQL, give up after 5s waiting for a lock, and stop any statement after 60s."""
    if op.get_context().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
        op.execute("SET LOCAL statement_timeout = '60s'")


def upgrade() -> None:
    _timeouts()
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("role", sa.String(length=20), server_default="user", nullable=False))
    op.execute("UPDATE api_tokens SET role = 'admin' WHERE admin")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("admin")


def downgrade() -> None:
    _timeouts()
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE api_tokens SET admin = (role = 'admin')")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("role")
