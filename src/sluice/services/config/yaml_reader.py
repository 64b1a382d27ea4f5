"""Reading a config file's YAML within bounds, and recording where every node is (a `SourceMap`).
A syntax error, a bound passed or a key written twice becomes a `ConfigProblem` at its line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sluice.services.config.source import (
    ConfigError,
    ConfigPath,
    ConfigProblem,
    SourceMap,
    format_path,
    position_of,
)

_MERGE_KEY = "<<"

# Bounds on what a config document may cost to read. A file is read before anything else looks at it,
# so these keep a hostile or broken file (a YAML alias bomb, a thousand nested brackets, a generated
# dump) from taking the memory or the stack of the process that reads it.
MAX_CONFIG_CHARS = 5_000_000
MAX_DEPTH = 40
MAX_ALIAS_NODES = 10_000  # values that aliases (`*name`) may repeat, in all


class LimitExceeded(yaml.MarkedYAMLError):
    """The document goes past one of the bounds above, at `problem_mark`."""


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, composing within `MAX_DEPTH` levels and `MAX_ALIAS_NODES` repeated values.
    An alias inside the value its anchor names (a loop) is refused."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}
        self._repeated = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        mark: Any = event.start_mark
        if isinstance(event, AliasEvent):
            if event.anchor in self._open_anchors:
                raise LimitExceeded(
                    problem=f"alias *{event.anchor} is inside the value &{event.anchor} names; "
                    "a value cannot contain itself",
                    problem_mark=mark,
                )
            node = super().compose_node(parent, index)
            self._repeated += _expanded_size(node, self._sizes) if node is not None else 0
            if self._repeated > MAX_ALIAS_NODES:
                raise LimitExceeded(
                    problem=f"aliases (*{event.anchor}) repeat more than {MAX_ALIAS_NODES} values in all; "
                    "write the values out instead",
                    problem_mark=mark,
                )
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitExceeded(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark)
        anchor = event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor is not None:
                self._open_anchors.discard(anchor)
        return node


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """How many nodes `node` stands for once every alias below it is written out (memoised by node)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    size = 1
    if isinstance(node, SequenceNode):
        size += sum(_expanded_size(item, sizes) for item in node.value)
    elif isinstance(node, MappingNode):
        size += sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


def read_yaml(text: str, filename: str) -> tuple[Any, SourceMap, list[ConfigProblem]]:
    """Parse one YAML document. Returns the data, its source map, and duplicate-key problems.
    A syntax error, a character YAML refuses, or a document past the bounds above raises
    `ConfigError` at its position."""
    source = SourceMap(filename)
    problems: list[ConfigProblem] = []
    if len(text) > MAX_CONFIG_CHARS:
        line, col = position_of(text, MAX_CONFIG_CHARS)
        raise ConfigError(
            [
                ConfigProblem(
                    filename,
                    line,
                    col,
                    "",
                    f"the file is longer than {MAX_CONFIG_CHARS:,} characters; split what it declares "
                    "or manage the directory with SCIM or LDAP",
                )
            ]
        )
    try:
        loader = _BoundedLoader(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError([_reader_problem(filename, text, exc)]) from exc
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


def _reader_problem(filename: str, text: str, exc: yaml.reader.ReaderError) -> ConfigProblem:
    line, col = position_of(text, min(exc.position, len(text)))
    character = exc.character if isinstance(exc.character, int) else 0
    return ConfigProblem(
        filename,
        line,
        col,
        "",
        f"the character U+{character:04X} is not allowed in a config file (YAML refuses control "
        "characters); remove it",
    )


def _syntax_problem(filename: str, exc: yaml.MarkedYAMLError) -> ConfigProblem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    if isinstance(exc, LimitExceeded):
        return ConfigProblem(filename, line, col, "", str(exc.problem))
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
