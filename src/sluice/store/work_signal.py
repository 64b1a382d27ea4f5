"""The work signal: a one-row counter that a change raises, so that a worker in another process on the
same SQLite store notices it (`cli/serving.WorkSignalPoller` reads it every second).

On PostgreSQL the same job is done by `NOTIFY sluice_work` (`runtime.Runtime.notify_work`), which
needs no shared row that every change would queue behind; SQLite has no notices, and its writers
are serialised anyway, so one more row written costs nothing there.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from sluice.store.tables import Base

_ROW = 1


class WorkSignal(Base):
    __tablename__ = "work_signal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(BigInteger)


def raise_work_signal(session: Session) -> None:
    """Count one more change, in the caller's transaction: a poller sees it once that commits."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(WorkSignal).values(id=_ROW, generation=1)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkSignal.id], set_={"generation": WorkSignal.generation + 1}
        )
    )


def work_signal_generation(session: Session) -> int:
    """How many changes have raised the signal (0 before the first)."""
    return session.scalar(select(WorkSignal.generation).where(WorkSignal.id == _ROW)) or 0
