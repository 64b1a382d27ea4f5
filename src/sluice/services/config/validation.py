"""Pydantic's validation errors of a config document as problems in words a person can act on, each
at the `FILE:LINE:COL` of the value it is about."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from sluice.domain.text import INVALID_UNICODE, too_many_entries
from sluice.services.config.source import ConfigPath, ConfigProblem, SourceMap


def problems_from_validation(
    exc: ValidationError, source: SourceMap, model: type[BaseModel], prefix: ConfigPath = ()
) -> list[ConfigProblem]:
    """One problem per pydantic error, at the position of its location, in words a person can act on."""
    problems = []
    for error in exc.errors(include_url=False):
        loc: ConfigPath = tuple(p for p in error["loc"] if p != "[key]")
        problems.append(source.problem((*prefix, *loc), _message(error, model, loc)))
    return problems


_TYPE_WORDS = {
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "dict_type": "a mapping (key: value)",
    "list_type": "a list",
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "enum": "one of the listed values",
}


def _message(error: Any, model: type[BaseModel], loc: ConfigPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        listed = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {loc[-1]!r}{listed}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing"
    if kind == "enum":
        return f"{error['msg']}, got {error['input']!r}"
    too_many = too_many_entries(error)
    if too_many:
        return too_many
    if kind == "string_unicode":
        return INVALID_UNICODE
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {describe_value(error['input'])}"
    message: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def describe_value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def allowed_keys(model: type[BaseModel], loc: ConfigPath) -> list[str]:
    """The keys the model found at `loc` accepts (empty when the location is not a model)."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        origin = get_origin(current)
        if isinstance(part, str) and isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(part)
            if field_info is None:
                return []
            current = field_info.annotation
        elif isinstance(part, int) and origin is list:
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            return models[0]
        return args[0] if len(args) == 1 else annotation
    return annotation
