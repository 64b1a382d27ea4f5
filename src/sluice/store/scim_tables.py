"""Tables of the SCIM directory source: the bearer tokens an identity provider pushes with (one
source each), and what each source last wrote about a user or group, so that the resource reads back
as it was sent. The identity or group row itself stays the one the policy evaluator reads. Same
`Base` as `tables.py`, which imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base


class ScimToken(Base):
    """A SCIM bearer token: it can only push the directory of its `source` (e.g. `okta`), nothing else."""

    __tablename__ = "scim_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str] = mapped_column(String(40), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ScimRecord(Base):
    """A SCIM resource (`kind` User or Group) a source owns. `id` is the identity's or group's id, which
    is also the SCIM `id`; `payload` is the resource as last written, without id, meta and members."""

    __tablename__ = "scim_records"
    __table_args__ = (
        Index("ix_scim_records_source_kind_external_id", "source", "kind", "external_id"),
        Index("ix_scim_records_source_kind_key", "source", "kind", "key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    source: Mapped[str] = mapped_column(String(40))
    # userName (lowered) of a user, displayName of a group: what a provider looks resources up by
    key: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(320))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
