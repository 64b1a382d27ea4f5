"""Checks on the integrations a config file declares: the connector kind loads, the connector config
validates, holds only storable text, and names its admin secrets instead of writing them inline."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sluice.connectors.builtin_groups import BuiltinGroupsConfig
from sluice.connectors.registry import connector_class, validate_config
from sluice.domain.errors import InvalidInput
from sluice.domain.text import storable_text
from sluice.services.config.source import ConfigPath, ConfigProblem, SourceMap
from sluice.services.config.validation import problems_from_validation

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument, IntegrationSpec

INLINE_ADMIN_KEY_MESSAGE = (
    "admin secrets are never written in the config: use password: {env: NAME} or {file: PATH}"
)
_URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


def builtin_groups_config(integration: IntegrationSpec) -> BuiltinGroupsConfig | None:
    """The validated config of a builtin_groups integration; None for other kinds or a bad config."""
    try:
        model = validate_config(integration.kind, integration.config)
    except (InvalidInput, ImportError, AttributeError):
        return None
    return model if isinstance(model, BuiltinGroupsConfig) else None


def secret_problems(config: Any, path: ConfigPath, source: SourceMap) -> list[ConfigProblem]:
    """A `password:` written as plain text, or a URL with a password in it, anywhere in a config."""
    problems: list[ConfigProblem] = []
    if isinstance(config, dict):
        for key, value in config.items():
            child = (*path, str(key))
            if str(key).lower() == "password" and not isinstance(value, dict):
                problems.append(source.problem(child, INLINE_ADMIN_KEY_MESSAGE))
            elif isinstance(value, str) and _URL_WITH_PASSWORD.match(value):
                problems.append(
                    source.problem(
                        child,
                        f"this URL holds a password, and admin secrets are never written in the config: "
                        f"use {key}: {{env: NAME}} or {{file: PATH}}",
                    )
                )
            else:
                problems += secret_problems(value, child, source)
    elif isinstance(config, list):
        for index, item in enumerate(config):
            problems += secret_problems(item, (*path, index), source)
    return problems


def text_problems(config: Any, path: ConfigPath, source: SourceMap) -> list[ConfigProblem]:
    """Text no store takes (a NUL, a lone surrogate) anywhere in a free-form config, keys included."""
    problems: list[ConfigProblem] = []
    items = (
        config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else []
    )
    for key, value in items:
        child = (*path, key if isinstance(key, int) else str(key))
        for text in (key, value):
            if isinstance(text, str):
                try:
                    storable_text(text)
                except ValueError as exc:
                    problems.append(source.problem(child, str(exc)))
                    break
        else:
            problems += text_problems(value, child, source)
    return problems


class ConnectorClasses:
    """Connector classes by kind, each loaded once per check, with why a kind cannot be used."""

    def __init__(self) -> None:
        self._classes: dict[str, tuple[Any, str]] = {}

    def get(self, kind: str) -> tuple[Any, str]:
        """The connector class of `kind`, or None and why it cannot be used."""
        if kind not in self._classes:
            try:
                cls = connector_class(kind)
                lacking = [name for name in ("permissions", "config_model") if not hasattr(cls, name)]
                if lacking:
                    self._classes[kind] = (
                        None,
                        f"integration kind {kind!r} does not define {', '.join(lacking)}",
                    )
                else:
                    self._classes[kind] = (cls, "")
            except InvalidInput as exc:
                self._classes[kind] = (None, exc.detail)
            except (ImportError, AttributeError) as exc:
                self._classes[kind] = (
                    None,
                    f"integration kind {kind!r} is installed but cannot be loaded: {exc}",
                )
        return self._classes[kind]


def integration_problems(doc: ConfigDocument, connectors: ConnectorClasses) -> list[ConfigProblem]:
    """Each declared integration's kind and config (owners are references, checked with the others)."""
    source = doc.source
    problems: list[ConfigProblem] = []
    for index, spec in enumerate(doc.integrations):
        base: ConfigPath = ("integrations", index)
        secrets = secret_problems(spec.config, (*base, "config"), source)
        secrets += text_problems(spec.config, (*base, "config"), source)
        problems += secrets
        cls, why = connectors.get(spec.kind)
        if cls is None:
            problems.append(source.problem((*base, "kind"), why))
            continue
        if secrets:
            continue
        try:
            json.dumps(spec.config)
        except (TypeError, ValueError):
            problems.append(
                source.problem(
                    (*base, "config"),
                    "config values must be text, numbers, true/false, lists or mappings "
                    "(quote dates and times)",
                )
            )
            continue
        try:
            validate_config(spec.kind, spec.config)
        except InvalidInput as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                problems += problems_from_validation(cause, source, cls.config_model, (*base, "config"))
            else:
                problems.append(source.problem((*base, "config"), exc.detail))
    return problems
