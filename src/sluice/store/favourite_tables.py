"""Favourites: a person's saved requests, asked for again in one step. Same `Base` as `tables.py`,
which imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base


class Favourite(Base):
    """What a request asked for (its units, or a bundle), for how long and why, kept by its owner.
    Nothing here is a right: asking again checks everything as a new request does."""

    __tablename__ = "favourites"
    __table_args__ = (Index("ix_favourites_identity_name", "identity_id", "name", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    identity_id: Mapped[str] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    bundle: Mapped[str | None] = mapped_column(String(120))
    units: Mapped[list[Any]] = mapped_column(JSON)  # [[permission, path], ...]; empty for a bundle
    duration_seconds: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
