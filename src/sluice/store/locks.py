"""Locks that keep several workers sharing one store from doing the same work twice.

Two kinds, both scoped to the caller's transaction (released at commit or rollback):

* a *duty lock* (`try_duty_lock`): a PostgreSQL advisory lock on a fixed key, so one transaction at a
  time runs a duty such as the people pass. The embedded SQLite store runs one worker and writes one
  transaction at a time, so there the lock is always granted: the dialect check lives here only.
* row locks on grants about to change (`lock_grants`): taken in id order, so two lockers never
  deadlock on each other, and the rows are re-read, so a decision taken on an earlier read is applied
  to what is committed now (a grant another transaction ended meanwhile is seen as ended).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sluice.store.tables import Grant


class Duty(IntEnum):
    """Advisory lock keys (signed 64-bit). Fixed forever: workers of different versions must agree."""

    PEOPLE = 0x736C_7569_6365_0001  # "sluice" + 1: re-evaluation and automatic flows
    SEALING_KEYS = 0x736C_7569_6365_0002  # processes starting together record their key one at a time
    AUDIT_STREAM = 0x736C_7569_6365_0003  # streaming audit events to syslog and files


def try_duty_lock(session: Session, duty: Duty) -> bool:
    """Take the duty's lock for the rest of this transaction, or return False at once when another
    transaction holds it. Re-entrant: a transaction that holds it gets it again."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(int(duty)))))


def wait_for_duty_lock(session: Session, duty: Duty) -> None:
    """Take the duty's lock for the rest of this transaction, waiting for another holder to finish."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(int(duty))))


def lock_grants(session: Session, grants: Iterable[Grant]) -> None:
    """Lock these grants' rows until the transaction ends and reload them in place."""
    ids = sorted({grant.id for grant in grants})
    if not ids:
        return
    session.scalars(
        select(Grant)
        .where(Grant.id.in_(ids))
        .order_by(Grant.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
