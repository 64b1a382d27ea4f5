"""Directory sources Sluice reads on its own (LDAP), declared in the config file: what to read, how
often, and how the last sync went. Sources that push (SCIM) have tokens instead (`scim_tables.py`).
Same `Base` as `tables.py`, which imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base


class DirectorySource(Base):
    """One source (`name`; its rows carry `ldap:<name>`). `spec` is its validated config section;
    `next_sync_at` is also the claim: a worker moves it forward before it reads the directory, so two
    workers never read the same source at once."""

    __tablename__ = "directory_sources"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict[str, Any]]
    sync_interval_seconds: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(40), default="config")
    next_sync_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
