"""`sluice plan --by group`: the access diff per group rather than per person. A change is listed under
each group of the people it reaches, with how many of them it reaches ("12 of 40 members")."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sluice.services.config.access_diff import CHANGE_KINDS, PersonDiff, summarised

NO_GROUP = "(in no group)"

Unit = tuple[str, str]


@dataclass
class GroupDiff:
    name: str
    people: int  # members the change reaches
    changes: dict[str, Counter[Unit]] = field(default_factory=dict)  # kind -> unit -> members

    def lines(self, kind: str) -> list[str]:
        """One line per group of units that reach the same number of members, summarised by parent."""
        by_count: dict[int, list[Unit]] = defaultdict(list)
        for unit, count in self.changes.get(kind, Counter()).items():
            by_count[count].append(unit)
        return [
            f"{line} ({count} of {self.people} members)"
            for count in sorted(by_count, reverse=True)
            for line in summarised(sorted(by_count[count]))
        ]

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.name,
            "people": self.people,
            **{
                kind: [
                    {"resource": path, "permission": permission, "people": count}
                    for (path, permission), count in sorted(self.changes.get(kind, Counter()).items())
                ]
                for kind in CHANGE_KINDS
            },
        }


def by_group(people: list[PersonDiff]) -> list[GroupDiff]:
    groups: dict[str, GroupDiff] = {}
    for person in people:
        for name in sorted(person.groups) or [NO_GROUP]:
            group = groups.setdefault(name, GroupDiff(name, 0))
            group.people += 1
            for kind in CHANGE_KINDS:
                group.changes.setdefault(kind, Counter()).update(getattr(person, kind))
    return [groups[name] for name in sorted(groups)]
