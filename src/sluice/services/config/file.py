"""The config file (`sluice apply -f FILE`): identities, groups, integrations and access flows as code.

`load_config` / `parse_config` read the YAML and check everything that can be checked before anything
is applied: syntax, keys, types, duplicates, references, connector configs and inline secrets. All
problems found are raised together as one `ConfigError`, each pointing at its line in the file. The
document's shape is `document.py`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from sluice.services.audit.webhooks import webhook_problems
from sluice.services.config.checks import check_document
from sluice.services.config.document import ConfigDocument
from sluice.services.config.integration_checks import secret_problems
from sluice.services.config.source import ConfigError, ConfigProblem, SourceMap, position_of
from sluice.services.config.validation import problems_from_validation
from sluice.services.config.yaml_reader import read_yaml

__all__ = ["ConfigError", "ConfigProblem", "load_config", "parse_config"]


def parse_config(text: str, filename: str, *, session: Session | None = None) -> ConfigDocument:
    """Read and check a config document. With a session, references may also name identities, groups
    and integrations already in Sluice (not managed by the config); without one, they must resolve
    within the file. Raises `ConfigError` with every problem found."""
    data, source, problems = read_yaml(text, filename)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problems.append(
            source.problem(
                (), "the file must be a mapping with the keys identities, groups, integrations, flows"
            )
        )
        raise ConfigError(problems)
    try:
        doc = ConfigDocument.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, source, ConfigDocument)
        partial, dropped = _valid_part(data, exc, source)
        integrations = data.get("integrations")
        for index, raw in enumerate(integrations if isinstance(integrations, list) else []):
            if isinstance(raw, dict) and (partial is None or index in dropped.get("integrations", ())):
                problems += secret_problems(raw.get("config"), ("integrations", index, "config"), source)
        if partial is not None:
            problems += check_document(partial, session) + webhook_problems(partial)
        raise ConfigError(problems) from exc
    doc._source = source
    problems += check_document(doc, session) + webhook_problems(doc)
    if problems:
        raise ConfigError(problems)
    return doc


_SECTIONS = frozenset(ConfigDocument.model_fields)
_NAME_KEYS = {
    "identities": "email",
    "groups": "name",
    "integrations": "name",
    "scopes": "name",
    "bundles": "name",
    "schedules": "name",
}


def _valid_part(
    data: dict[str, Any], exc: ValidationError, source: SourceMap
) -> tuple[ConfigDocument | None, dict[str, set[int]]]:
    """The document without the list items (and unknown top-level keys) that failed validation, so the
    checks across the document still run and every problem is reported at once; with the indexes left
    out per section. None when the failure is in the document's shape itself."""
    dropped: dict[str, set[int]] = defaultdict(set)
    unknown: set[str] = set()
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in _SECTIONS:
            dropped[str(loc[0])].add(loc[1])
        elif len(loc) == 1 and error["type"] == "extra_forbidden":
            unknown.add(str(loc[0]))
        else:
            return None, {}
    kept = {
        key: [item for index, item in enumerate(value) if index not in dropped[key]]
        if key in dropped
        else value
        for key, value in data.items()
        if key not in unknown
    }
    try:
        doc = ConfigDocument.model_validate(kept)
    except ValidationError:
        return None, {}
    doc._source = source.without(dropped, {key: len(data[key]) for key in dropped})
    doc._unchecked = _names_of(data, dropped)
    return doc, dropped


def _names_of(data: dict[str, Any], dropped: dict[str, set[int]]) -> dict[str, set[str]]:
    """What the left-out items declare, read from the raw data as far as it is text."""
    names: dict[str, set[str]] = defaultdict(set)
    for section, indexes in dropped.items():
        for index in indexes:
            item = data[section][index]
            if not isinstance(item, dict):
                continue
            value = item.get(_NAME_KEYS.get(section, ""))
            if isinstance(value, str):
                names[section].add(value.strip().lower() if section == "identities" else value)
            if section == "identities":
                groups, attributes = item.get("groups"), item.get("attributes")
                if isinstance(groups, list):
                    names["groups"].update(group for group in groups if isinstance(group, str))
                if isinstance(attributes, dict):
                    names["attributes"].update(str(key) for key in attributes)
    return names


def load_config(path: Path, *, session: Session | None = None) -> ConfigDocument:
    """Read and check the config file at `path` (see `parse_config`)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([ConfigProblem(str(path), None, None, "", f"cannot read: {exc.strerror}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line, col = position_of(good, len(good))
        message = f"not UTF-8 text: the byte 0x{raw[exc.start]:02X} cannot start or continue a character"
        raise ConfigError([ConfigProblem(str(path), line, col, "", message)]) from exc
    return parse_config(text, str(path), session=session)
