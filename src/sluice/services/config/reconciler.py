"""The walker `sluice plan` and `sluice apply` share: it records what would change (a plan) and, when
it holds a writer and a clock, makes each change and audits it. The steps that walk one kind of object
(`directory_objects`, `integrations`, `flows`, `people`, `targeting`, webhooks) take it as argument."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.config.document import ConfigDocument
from sluice.services.config.plan import Plan, PlanEntry
from sluice.store.tables import Group, Identity

# Column -> the word a person sees in a plan.
_LABELS = {"manager_email": "manager", "sync_interval_seconds": "sync_interval"}


def differences(row: Any, wanted: Mapping[str, Any]) -> list[str]:
    """The plan's words for the columns of `row` that differ from `wanted`."""
    return [_LABELS.get(key, key) for key, value in wanted.items() if getattr(row, key) != value]


def assign(row: Any, wanted: Mapping[str, Any]) -> None:
    for key, value in wanted.items():
        setattr(row, key, value)


class Reconciler:
    """Walks the document against the store once. Without `write` it only fills the plan; with
    `write=(actor, now)` it also makes each change and audits it. Steps share the rows they found
    (`identities`, `groups`, `stale_groups`) and add to `conflicts`, which stop the apply."""

    def __init__(
        self, session: Session, doc: ConfigDocument, *, write: tuple[str, datetime] | None = None
    ) -> None:
        self.session = session
        self.doc = doc
        self.write = write
        self.plan = Plan()
        self.conflicts: list[str] = []
        self.identities: dict[str, Identity] = {}
        self.groups: dict[str, Group] = {}
        self.stale_groups: list[Group] = []

    @property
    def now(self) -> datetime:
        if self.write is None:
            raise RuntimeError("a plan has no clock")
        return self.write[1]

    def _event(self, action: Action, entry: PlanEntry, changed: list[str] | None = None) -> None:
        if self.write is None:
            return
        extra: dict[str, Any] = {"changed": changed} if changed else {}
        record(
            self.session,
            now=self.now,
            actor=self.write[0],
            action=action,
            subject_type=entry.kind,
            subject_id=entry.name[:200],
            kind=entry.kind,
            name=entry.name,
            **extra,
        )

    def created(self, kind: str, name: str) -> None:
        entry = PlanEntry(kind, name)
        self.plan.created.append(entry)
        self._event(Action.OBJECT_CREATED, entry)

    def changed(self, kind: str, name: str, fields: list[str]) -> None:
        entry = PlanEntry(kind, name)
        self.plan.changed.append(entry)
        self.plan.notes[entry] = ", ".join(fields)
        self._event(Action.OBJECT_CHANGED, entry, fields)

    def removed(self, kind: str, name: str, note: str = "") -> None:
        entry = PlanEntry(kind, name)
        self.plan.removed.append(entry)
        if note:
            self.plan.notes[entry] = note
        self._event(Action.OBJECT_REMOVED, entry)
