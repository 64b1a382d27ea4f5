"""Bulk reads and writes on the DB-API cursor, for the few passes that move a million rows (the
inventory sync) or write a row or two per grant of a batch (expiry, the worker's outcomes, their audit
events). Statements are built and compiled by SQLAlchemy, as everywhere else, once per pass (or once,
for a statement kept as a module constant);
rows then go through the driver as plain tuples, without the per-row result and parameter
processing that costs more than the database itself at that size. Parameters get their column
type's bind processing (a datetime on SQLite); result values come back as the driver gives them, so
read only columns that need no conversion (text, integers) or that are only tested for NULL."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from psycopg import errors, sql
from sqlalchemy import Column, Dialect, Executable, Insert, Table, Update, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class _Compiled:
    text: str
    order: tuple[str, ...] | None
    defaults: dict[str, Any]
    processors: dict[str, Callable[[Any], Any]]


def _compile(statement: Executable, dialect: Dialect, *, positional: bool) -> _Compiled:
    compiled: Any = statement.compile(  # type: ignore[attr-defined]
        dialect=_positional(dialect) if positional else dialect
    )
    return _Compiled(
        text=str(compiled),
        order=getattr(compiled, "positiontup", None),
        defaults=dict(compiled.params),
        processors={
            name: processor
            for bind, name in compiled.bind_names.items()
            if (processor := bind.type._cached_bind_processor(dialect)) is not None
        },
    )


def update_by_id(model: Any, columns: Iterable[str], *, key: str) -> Update:
    """The UPDATE of one row of `model`'s table, found by its `id` (bound as `key`), setting each of
    `columns` to the value bound under the column's name: built once, then run for a batch of rows
    with `Prepared(..., reuse=True).execute_many`."""
    table = cast(Table, model.__table__)
    return update(table).where(table.c.id == bindparam(key)).values({name: None for name in columns})


# Statements built once (module constants) are compiled once per kind of store, not per pass.
_compiled: dict[tuple[Executable, type[Dialect], bool], _Compiled] = {}


class Prepared:
    """One compiled statement on the session's connection."""

    def __init__(
        self, session: Session, statement: Executable, *, positional: bool = False, reuse: bool = False
    ) -> None:
        """`positional`: parameters by place on any driver, so rows can go as bare tuples
        (`execute_tuples`). `reuse`: the statement is built once and kept (a module constant), so its
        compiled form is kept too."""
        self.session = session
        dialect = session.get_bind().dialect
        key = (statement, type(dialect), positional)
        compiled = _compiled.get(key) if reuse else None
        if compiled is None:
            compiled = _compile(statement, dialect, positional=positional)
            if reuse:
                _compiled[key] = compiled
        self.text = compiled.text
        self.order = compiled.order
        self.defaults = compiled.defaults
        self.processors = compiled.processors

    def _arguments(self, params: dict[str, Any], seen: dict[Any, Any] | None = None) -> Any:
        merged = params if self.defaults.keys() <= params.keys() else {**self.defaults, **params}
        if self.processors:
            merged = dict(merged)
            for name, processor in self.processors.items():
                value = merged.get(name)
                if value is None:
                    continue
                if seen is None or not isinstance(value, Hashable):
                    merged[name] = processor(value)
                else:  # a bulk write repeats its time stamps: convert each once
                    if (name, value) not in seen:
                        seen[name, value] = processor(value)
                    merged[name] = seen[name, value]
        return merged if self.order is None else tuple(merged[name] for name in self.order)

    def _cursor(self) -> Any:
        return self.session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]

    def rows(self, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            cursor.execute(self.text, self._arguments(params or {}))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def execute_many(self, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        cursor = self._cursor()
        try:
            seen: dict[Any, Any] = {}
            cursor.executemany(self.text, [self._arguments(row, seen) for row in rows])
        finally:
            cursor.close()

    def execute_tuples(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Many rows given as tuples in the statement's parameter order, with no work per row in
        Python: the values must already be what the driver takes (`driver_value`)."""
        cursor = self._cursor()
        try:
            cursor.executemany(self.text, rows)
        finally:
            cursor.close()


def insert_many(session: Session, statement: Insert, rows: Sequence[dict[str, Any]]) -> None:
    """One INSERT for many rows of the same keys, through the driver's executemany."""
    if rows:
        Prepared(session, statement.values({key: None for key in rows[0]})).execute_many(rows)


_positional_dialects: dict[type[Dialect], Dialect] = {}


def _positional(dialect: Dialect) -> Dialect:
    """A dialect of the same kind that writes positional parameters, so rows can go as bare tuples."""
    kind = type(dialect)
    if kind not in _positional_dialects:
        style = "qmark" if dialect.name == "sqlite" else "format"
        _positional_dialects[kind] = kind(paramstyle=style)  # type: ignore[call-arg]
    return _positional_dialects[kind]


def driver_value(session: Session, column: Column[Any], value: Any) -> Any:
    """`value` as the driver takes it for `column` (a datetime is text on SQLite), for `insert_tuples`."""
    processor = column.type._cached_bind_processor(session.get_bind().dialect)
    return value if processor is None or value is None else processor(value)


def insert_tuples(
    session: Session, statement: Insert, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """One INSERT for many rows given as tuples in `columns` order, through the driver's executemany
    with no work per row in Python: the values must already be what the driver takes (`driver_value`).
    For the passes that write a row per listed resource, where building a dict per row costs more
    than writing it."""
    if not rows:
        return
    prepared = Prepared(session, statement.values({name: None for name in columns}), positional=True)
    if list(prepared.order or ()) != list(columns):
        raise ValueError(f"the statement does not take {list(columns)} in that order")
    prepared.execute_tuples(rows)


def copy_tuples(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Many rows given as tuples in `columns` order, through PostgreSQL's COPY: one statement and a
    stream of rows, where an INSERT per row costs the server a statement each. Binary, with each
    column's type named up front: neither side formats or parses text, a fifth of the client's work
    of a text COPY. No conflict clause: a row that breaks a constraint fails the whole COPY."""
    if not rows:
        return
    dialect = session.get_bind().dialect
    # The type as the server knows it, without its modifier: VARCHAR(32) is sent as a varchar.
    types = [_MODIFIER.sub("", table.c[name].type.compile(dialect=dialect)).lower() for name in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


_MODIFIER = re.compile(r"\([^)]*\)")


def insert_new_tuples(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Many rows given as tuples in `columns` order (as `insert_tuples`), skipping those whose key is
    in the table already. On PostgreSQL they go by COPY, in a savepoint: when one is there already
    (rare: the passes that use this remove repeats within their batch), the COPY is undone and the
    rows go again as INSERTs that skip conflicts."""
    if session.get_bind().dialect.name != "postgresql":
        insert_tuples(session, sqlite.insert(table).on_conflict_do_nothing(), columns, rows)
        return
    try:
        with session.begin_nested():
            copy_tuples(session, table, columns, rows)
    except errors.UniqueViolation:
        insert_tuples(session, postgresql.insert(table).on_conflict_do_nothing(), columns, rows)
