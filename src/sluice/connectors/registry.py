"""Finding connector classes: built-in ones and third-party ones registered under the
`sluice.connectors` entry point group."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.connectors.base import Connector, ConnectorContext
from sluice.domain.errors import InvalidInput

ENTRY_POINT_GROUP = "sluice.connectors"


@cache
def connector_classes() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found[entry.name] = entry
    return found


def connector_class(kind: str) -> Any:
    entries = connector_classes()
    if kind not in entries:
        known = ", ".join(sorted(entries)) or "none"
        raise InvalidInput(f"unknown integration kind {kind!r}; known kinds: {known}")
    return entries[kind].load()


def validate_config(kind: str, config: dict[str, Any]) -> BaseModel:
    cls = connector_class(kind)
    try:
        model: BaseModel = cls.config_model.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{kind} config: {where}: {first['msg']}") from exc
    return model


def build_connector(kind: str, name: str, config: dict[str, Any], context: ConnectorContext) -> Connector:
    cls = connector_class(kind)
    connector: Connector = cls(name, validate_config(kind, config), context)
    return connector
