"""Targeting, people and reliability.

Resource tags, bundles and saved scopes; on-call schedules and the re-evaluation queue; grant columns
for automatic flows, extensions, end warnings and revoke failures; longer principals (LDAP DNs).

Revision ID: bc0e4f71cd47
Revises: 1d627fd058e8
Create Date: 2026-11-27 21:09:43.077546
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "bc0e4f71cd47"
down_revision: str | Sequence[str] | None = "1d627fd058e8"
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
    op.create_table(
        "bundles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundles")),
        sa.UniqueConstraint("name", name=op.f("uq_bundles_name")),
    )
    op.create_table(
        "people_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people_changes")),
    )
    op.create_index(op.f("ix_people_changes_identity_id"), "people_changes", ["identity_id"], unique=False)
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("feed_text", sa.Text(), nullable=True),
        sa.Column("feed_read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feed_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.UniqueConstraint("name", name=op.f("uq_schedules_name")),
    )
    op.create_table(
        "scopes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scopes")),
        sa.UniqueConstraint("name", name=op.f("uq_scopes_name")),
    )
    op.create_table(
        "resource_tags",
        sa.Column("resource_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=360), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_id"],
            ["resources.id"],
            name=op.f("fk_resource_tags_resource_id_resources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_id", "key", name=op.f("pk_resource_tags")),
    )
    op.create_index("ix_resource_tags_key_value", "resource_tags", ["key", "value"], unique=False)
    op.add_column("grants", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("grants", sa.Column("revoke_failed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("grants", sa.Column("flow_name", sa.String(length=120), nullable=True))
    op.add_column("grants", sa.Column("extensions", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("grants", sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("grants") as batch:  # SQLite rebuilds the table, PostgreSQL alters it
        batch.alter_column(
            "principal",
            existing_type=sa.VARCHAR(length=63),
            type_=sa.String(length=500),
            existing_nullable=False,
        )
    op.create_index(op.f("ix_grants_flow_name"), "grants", ["flow_name"], unique=False)
    op.add_column("requests", sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("requests", sa.Column("escalation_tier", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        "ix_resources_integration_type_path", "resources", ["integration_id", "type", "path"], unique=False
    )


def downgrade() -> None:
    _timeouts()
    op.drop_index("ix_resources_integration_type_path", table_name="resources")
    op.drop_column("requests", "escalation_tier")
    op.drop_column("requests", "starts_at")
    op.drop_index(op.f("ix_grants_flow_name"), table_name="grants")
    with op.batch_alter_table("grants") as batch:
        batch.alter_column(
            "principal",
            existing_type=sa.String(length=500),
            type_=sa.VARCHAR(length=63),
            existing_nullable=False,
        )
    op.drop_column("grants", "warned_at")
    op.drop_column("grants", "extensions")
    op.drop_column("grants", "flow_name")
    op.drop_column("grants", "revoke_failed_at")
    op.drop_column("grants", "failing_since")
    op.drop_index("ix_resource_tags_key_value", table_name="resource_tags")
    op.drop_table("resource_tags")
    op.drop_table("scopes")
    op.drop_table("schedules")
    op.drop_index(op.f("ix_people_changes_identity_id"), table_name="people_changes")
    op.drop_table("people_changes")
    op.drop_table("bundles")
