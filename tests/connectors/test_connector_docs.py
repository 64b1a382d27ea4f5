"""docs/connectors.md names every key each built-in connector accepts, in that connector's section,
nested keys included: a key added to a config model without a word in the docs fails here."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from sluice.connectors.base import SecretRef
from sluice.connectors.registry import connector_class

DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"
KINDS = ("postgresql", "mysql", "redis", "ldap_groups", "http", "builtin_groups")


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if annotation is SecretRef:
        return []  # `{env: …}` / `{file: …}`: one shape for every secret, documented once
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def keys_of(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    seen.add(model)
    keys = set(model.model_fields)
    for field in model.model_fields.values():
        for nested in _models_in(field.annotation):
            if nested not in seen:
                keys |= keys_of(nested, seen)
    return keys


def section(kind: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"^### `{kind}`.*?(?=^##)", text, re.MULTILINE | re.DOTALL)
    assert match, f"docs/connectors.md has no section for {kind}"
    return match.group(0)


@pytest.mark.parametrize("kind", KINDS)
def test_every_config_key_is_documented_in_its_section(kind: str) -> None:
    documented = section(kind)
    missing = sorted(k for k in keys_of(connector_class(kind).config_model) if f"`{k}`" not in documented)
    assert not missing, f"docs/connectors.md, section {kind}, does not name: {', '.join(missing)}"


@pytest.mark.parametrize("kind", KINDS)
def test_every_permission_is_documented_in_its_section(kind: str) -> None:
    documented = section(kind)
    permissions = {p for ps in connector_class(kind).permissions.values() for p in ps}
    assert all(f"`{p}`" in documented for p in permissions), permissions


def test_secret_references_are_documented_once() -> None:
    head = DOC.read_text().split("### TLS toward targets")[0]
    assert all(f"{{{key}: " in head for key in SecretRef.model_fields)


def test_the_section_finder_sees_a_missing_key() -> None:
    assert "`no_such_key`" not in section("mysql")
    assert "`user_host`" in section("mysql") and "`user_host`" not in section("redis")
