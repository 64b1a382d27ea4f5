"""Every connector registered under the `sluice.connectors` entry point group loads and has the
class-level shape the services rely on (third-party ones included, when installed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sluice.connectors.registry import connector_class, connector_classes, validate_config
from sluice.domain.errors import InvalidInput

BUILT_IN = {"postgresql", "builtin_groups", "mysql", "redis", "ldap_groups", "http"}


def test_the_built_in_kinds_are_registered() -> None:
    assert set(connector_classes()) >= BUILT_IN


@pytest.mark.parametrize("kind", sorted(BUILT_IN))
def test_each_kind_has_the_shape_the_services_use(kind: str) -> None:
    cls = connector_class(kind)
    assert cls.kind == kind
    assert isinstance(cls.issues_secret, bool)
    assert all(isinstance(p, tuple) for p in cls.permissions.values())
    assert cls.config_model.model_config.get("extra") == "forbid"
    with pytest.raises((ValidationError, InvalidInput)):
        validate_config(kind, {"no_such_option": True})
