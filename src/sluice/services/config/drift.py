"""`sluice plan --drift`: what the store holds that a config file does not, such as objects made or
changed through the API since the file was last applied. Both sides are read as config documents (the
store through `config export`) and compared object by object, so defaults and spellings that mean the
same thing do not count as drift."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from sluice.services.config.document import ConfigDocument

SECTIONS = (
    ("identity", "identities", "email"),
    ("group", "groups", "name"),
    ("integration", "integrations", "name"),
    ("flow", "flows", "name"),
    ("scope", "scopes", "name"),
    ("bundle", "bundles", "name"),
    ("schedule", "schedules", "name"),
    ("webhook", "webhooks", "name"),
)


@dataclass(frozen=True)
class Drift:
    kind: str
    name: str
    fields: tuple[str, ...] = ()  # empty: the file does not name the object at all

    @property
    def only_in_store(self) -> bool:
        return not self.fields

    def describe(self) -> str:
        if self.only_in_store:
            return f"{self.kind} {self.name}: in the store, not in the file"
        return f"{self.kind} {self.name}: the store differs from the file in {', '.join(self.fields)}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "only_in_store": self.only_in_store,
            "fields": list(self.fields),
        }


def _by_key(items: list[BaseModel], key: str) -> dict[str, dict[str, Any]]:
    return {
        str(getattr(item, key)).lower(): item.model_dump(mode="json", exclude_none=True) for item in items
    }


def drift(store: ConfigDocument, file: ConfigDocument) -> list[Drift]:
    """Objects of `store` that `file` lacks or describes otherwise, in section order."""
    found: list[Drift] = []
    file_groups = {g.name for g in file.groups} | {name for i in file.identities for name in i.groups}
    for kind, section, key in SECTIONS:
        held, written = _by_key(getattr(store, section), key), _by_key(getattr(file, section), key)
        for name, data in sorted(held.items()):
            if name not in written:
                if not (kind == "group" and name in {g.lower() for g in file_groups}):
                    found.append(Drift(kind, data.get(key, name)))
                continue
            other = written[name]
            fields = tuple(sorted(f for f in set(data) | set(other) if data.get(f) != other.get(f)))
            if fields:
                found.append(Drift(kind, data.get(key, name), fields))
    return found
