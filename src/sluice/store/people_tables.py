"""Tables of the people side: on-call schedules and the queue of directory changes that the worker
re-evaluates grants and requests against. Same `Base` as `tables.py`, which imports this module."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sluice.store.tables import Base


class Schedule(Base):
    """An on-call schedule: its spec (rotation or iCalendar feed) and the feed text last read."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    spec: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(String(40), default="config")
    feed_text: Mapped[str | None] = mapped_column(Text)
    feed_read_at: Mapped[datetime | None]
    feed_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PeopleChange(Base):
    """Something changed about people or policy: one identity (`identity_id`) or, when it is NULL,
    possibly anyone (a flow, a schedule, the inventory). The worker drains these and re-evaluates."""

    __tablename__ = "people_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identity_id: Mapped[str | None] = mapped_column(String(32), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
