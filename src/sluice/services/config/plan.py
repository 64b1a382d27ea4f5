"""What `sluice plan` shows and `sluice apply` did: objects created, changed and removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class PlanEntry(NamedTuple):
    kind: str  # identity, group, membership, integration, flow
    name: str  # email, name, or group/email for a membership


@dataclass
class Plan:
    created: list[PlanEntry] = field(default_factory=list)
    changed: list[PlanEntry] = field(default_factory=list)
    removed: list[PlanEntry] = field(default_factory=list)
    # what changed on a `changed` entry ("name, manager"), or how a removal happens ("deactivated")
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    # things a person should know that do not block the apply
    warnings: list[str] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.created or self.changed or self.removed)

    def counts(self) -> dict[str, int]:
        return {"created": len(self.created), "changed": len(self.changed), "removed": len(self.removed)}

    def summary(self) -> str:
        lines = []
        for mark, entries in (("+", self.created), ("~", self.changed), ("-", self.removed)):
            for entry in entries:
                note = self.notes.get(entry)
                lines.append(f"{mark} {entry.kind} {entry.name}" + (f" ({note})" if note else ""))
        lines += [f"! {warning}" for warning in self.warnings]
        if self.is_empty:
            lines.append("no changes")
        else:
            lines.append(
                f"{len(self.created)} to create, {len(self.changed)} to change, {len(self.removed)} to remove"
            )
        return "\n".join(lines)
