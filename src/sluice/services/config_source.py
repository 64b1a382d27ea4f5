"""Where things are in a config file: YAML read with node positions, and problems that point at them.

Every problem a person sees reads `FILE:LINE:COL: path.to[0].key: message`. Positions come from the
composed YAML node tree, keyed by the same path tuples pydantic uses in its error locations, so a
validation error anywhere in the document can be pointed at the line that caused it.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sluice.domain.errors import InvalidInput

ConfigPath = tuple[str | int, ...]

_MERGE_KEY = "<<"


def format_path(path: Iterable[str | int]) -> str:
    """`("flows", 0, "targets", 1, "type")` -> `flows[0].targets[1].type`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    col: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(InvalidInput):
    """Everything wrong with a config document, found before anything is applied."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.col or 0))
        super().__init__(
            "\n".join(str(p) for p in self.problems),
            errors=[asdict(p) for p in self.problems],
        )


@dataclass
class SourceMap:
    """The file name and the 1-based (line, column) of every key and list item in the document."""

    filename: str
    marks: dict[ConfigPath, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: ConfigPath) -> tuple[int, int] | None:
        """The position of `path`, or of its nearest ancestor written in the file."""
        probe = tuple(path)
        while True:
            if probe in self.marks:
                return self.marks[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def line_of(self, path: ConfigPath) -> int | None:
        found = self.marks.get(tuple(path))
        return found[0] if found else None

    def problem(self, path: ConfigPath, message: str) -> ConfigProblem:
        found = self.position(path)
        line, col = found if found else (None, None)
        return ConfigProblem(self.filename, line, col, format_path(path), message)


def read_yaml(text: str, filename: str) -> tuple[Any, SourceMap, list[ConfigProblem]]:
    """Parse one YAML document. Returns the data, its source map, and duplicate-key problems.
    A syntax error raises `ConfigError` at the position YAML reports."""
    source = SourceMap(filename)
    problems: list[ConfigProblem] = []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, source, problems
        # Walk before constructing: construction flattens merge keys in place.
        _walk(node, (), source, problems, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(filename, exc)]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(filename, 1, 1, "", f"not valid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return data, source, problems


def _syntax_problem(filename: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = f"YAML syntax error: {exc.problem or exc.context or 'not valid YAML'}"
    if exc.problem and exc.context:
        message += f" ({exc.context}"
        if exc.context_mark:
            message += f" started at line {exc.context_mark.line + 1}"
        message += ")"
    return ConfigProblem(filename, line, col, "", message)


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(
    node: Node, path: ConfigPath, source: SourceMap, problems: list[ConfigProblem], stack: set[int]
) -> None:
    if id(node) in stack:  # a recursive alias: nothing new below it
        return
    stack.add(id(node))
    if not path:
        source.marks[()] = _mark(node)
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.value == _MERGE_KEY:
                continue
            key = key_node.value
            child = (*path, key)
            line, col = _mark(key_node)
            if key in seen:
                where = format_path(child)
                problems.append(
                    ConfigProblem(
                        source.filename,
                        line,
                        col,
                        where,
                        f"key {key!r} is written twice in this mapping (first at line {seen[key]}); keep one",
                    )
                )
            else:
                seen[key] = line
                source.marks[child] = (line, col)
            _walk(value_node, child, source, problems, stack)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            source.marks[child] = _mark(item)
            _walk(item, child, source, problems, stack)
    stack.discard(id(node))


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
