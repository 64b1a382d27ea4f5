"""What a periodic duty of the worker looks like. Each duty is declared beside the domain it serves
(expiry in `revocation.py`, escalation in `approvals.py`, the people pass in `people_pass.py`, …) as an
object with `run` and `next_due`; the worker keeps a list of them and only decides when to call what.

A duty opens its own transactions: most run in one, but those that call a target or the network
(inventory sync, the orphan sweep, webhook delivery, feed refresh, the audit stream) read what is due
in one transaction, act outside any, and record the outcome in another, so a slow target never holds
store locks."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session


class Duty(Protocol):
    def run(self) -> object:
        """Do what is due now (nothing if nothing is). Returns what was done, for logs and tests."""
        ...

    def next_due(self, session: Session, now: datetime) -> datetime | None:
        """The earliest moment this duty has work (None: none until something changes). The worker runs
        a duty only when this is due, so it must be `now` (or earlier) whenever `run` has work,
        including work a change in the store brought."""
        ...
