"""Where things are in a config file: positions of the nodes the YAML reader (`yaml_reader.py`) found,
and problems that point at them.

Every problem a person sees reads `FILE:LINE:COL: path.to[0].key: message`. Positions come from the
composed YAML node tree, keyed by the same path tuples pydantic uses in its error locations, so a
validation error anywhere in the document can be pointed at the line that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from sluice.domain.errors import InvalidInput

ConfigPath = tuple[str | int, ...]


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
    # section -> the index in the file of each item kept, when some items were left out (`without`)
    kept: dict[str, list[int]] = field(default_factory=dict)

    def without(self, dropped: dict[str, set[int]], sizes: dict[str, int]) -> SourceMap:
        """This map for the document with the `dropped` items of each section left out (`sizes`: how
        many items each section has in the file): paths into the shorter lists still point at the
        lines and name the indexes of the file."""
        kept = {
            section: [i for i in range(sizes[section]) if i not in indexes]
            for section, indexes in dropped.items()
        }
        return SourceMap(self.filename, self.marks, kept)

    def in_file(self, path: ConfigPath) -> ConfigPath:
        """`path` with its list index renumbered as written in the file."""
        if len(path) >= 2 and isinstance(path[0], str) and isinstance(path[1], int) and path[0] in self.kept:
            kept = self.kept[path[0]]
            if path[1] < len(kept):
                return (path[0], kept[path[1]], *path[2:])
        return tuple(path)

    def position(self, path: ConfigPath) -> tuple[int, int] | None:
        """The position of `path`, or of its nearest ancestor written in the file."""
        probe = self.in_file(path)
        while True:
            if probe in self.marks:
                return self.marks[probe]
            if not probe:
                return None
            probe = probe[:-1]

    def line_of(self, path: ConfigPath) -> int | None:
        found = self.marks.get(self.in_file(path))
        return found[0] if found else None

    def problem(self, path: ConfigPath, message: str) -> ConfigProblem:
        found = self.position(path)
        line, col = found if found else (None, None)
        return ConfigProblem(self.filename, line, col, format_path(self.in_file(path)), message)


def position_of(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of the character at `offset` in `text`."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1
