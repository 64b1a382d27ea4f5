"""Criteria (`domain.criteria`) as SQL over `resources` and `resource_tags`.

The in-memory evaluator and this compiler must give the same answer for every resource (a property
test holds them to it). So comparisons are exact on every store: `LIKE` is avoided where SQLite would
make it case-insensitive; "under a parent" is a range over the path (`path >= 'p/' AND path < 'p0'`,
`0` being the character after `/`), which the path index serves and which is exact under a binary
(SQLite) or C collation (PostgreSQL store databases are created with one); on PostgreSQL it is paired
with a `LIKE` prefix that is exact under any collation.

Tag conditions read `resource_tags.value`, the effective value (an injected value over a discovered
one; see `targeting_tables.ResourceTag`), so they keep the `(key, value)` index.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from sluice.domain.criteria import NEGATIVE, AllOf, AnyOf, Condition, Criteria, Not, Op
from sluice.store.tables import Integration, Resource
from sluice.store.targeting_tables import ResourceTag

Column = ColumnElement[str] | InstrumentedAttribute[str]

_COLUMNS: dict[str, Column] = {
    "type": Resource.type,
    "name": Resource.name,
    "path": Resource.path,
    "id": Resource.id,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def path_under(prefix: str, dialect: str, column: Column = Resource.path) -> ColumnElement[bool]:
    """Paths that start with `prefix` (which ends with `/`), served by the path index."""
    following = ord(prefix[-1]) + 1
    if following > 0x10FFFF or 0xD800 <= following <= 0xDFFF:
        return func.substr(column, 1, len(prefix)) == prefix
    clause = and_(column >= prefix, column < prefix[:-1] + chr(following))
    if dialect == "postgresql":
        clause = and_(clause, column.like(_escape_like(prefix) + "%", escape="\\"))
    return clause


def _text_op(column: Column, op: Op, value: str, dialect: str) -> ColumnElement[bool]:
    if op in (Op.CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH) and value == "":
        return true()
    match op:
        case Op.EQ:
            return column == value
        case Op.CONTAINS:
            if dialect == "postgresql":
                return func.strpos(column, value) > 0
            return func.instr(column, value) > 0
        case Op.STARTS_WITH:
            if column is Resource.path and dialect in ("sqlite", "postgresql"):
                return _prefix(column, value, dialect)
            return func.substr(column, 1, len(value)) == value
        case Op.ENDS_WITH:
            if dialect == "postgresql":
                return func.right(column, len(value)) == value
            return func.substr(column, -len(value)) == value
    raise ValueError(f"not a text operator: {op}")


def _prefix(column: Column, value: str, dialect: str) -> ColumnElement[bool]:
    exact = func.substr(column, 1, len(value)) == value
    following = ord(value[-1]) + 1 if value else 0
    if value and following <= 0x10FFFF and not 0xD800 <= following <= 0xDFFF:
        return and_(path_under(value, dialect, column), exact)
    return exact


def _positive(cond: Condition, dialect: str) -> ColumnElement[bool]:
    values = cond.values
    if cond.field == "parent":
        if cond.op == Op.EXISTS:
            return Resource.path.like("%/%/%")
        return or_(*(path_under(p + "/", dialect) for p in values))
    if cond.field == "tag":
        where: list[ColumnElement[bool]] = [
            ResourceTag.resource_id == Resource.id,
            ResourceTag.key == cond.key,
        ]
        if cond.op == Op.IN or cond.op == Op.EQ:
            where.append(ResourceTag.value.in_(values) if len(values) > 1 else ResourceTag.value == values[0])
        elif cond.op != Op.EXISTS:
            where.append(_text_op(ResourceTag.value, cond.op, values[0], dialect))
        return exists(select(ResourceTag.resource_id).where(*where))
    if cond.field == "integration":
        inner = Condition("name", cond.op, values)
        return Resource.integration_id.in_(
            select(Integration.id).where(_column_op(Integration.name, inner, dialect))
        )
    if cond.op == Op.EXISTS:
        return true()
    return _column_op(_COLUMNS[cond.field], cond, dialect)


def _column_op(column: Column, cond: Condition, dialect: str) -> ColumnElement[bool]:
    if cond.op in (Op.IN, Op.EQ):
        return column.in_(cond.values) if len(cond.values) > 1 else column == cond.values[0]
    if cond.op == Op.EXISTS:
        return true()
    return _text_op(column, cond.op, cond.values[0], dialect)


def compile_criteria(criteria: Criteria, dialect: str) -> ColumnElement[bool]:
    """A WHERE clause over `resources` (tags through EXISTS on `resource_tags`)."""
    match criteria:
        case Condition(op=op) if op in NEGATIVE:
            positive = Condition(criteria.field, NEGATIVE[op], criteria.values, criteria.key)
            return not_(_positive(positive, dialect))
        case Condition():
            return _positive(criteria, dialect)
        case AllOf(items=items):
            return and_(true(), *(compile_criteria(i, dialect) for i in items)) if items else true()
        case AnyOf(items=items):
            return or_(false(), *(compile_criteria(i, dialect) for i in items)) if items else false()
        case Not(item=item):
            return not_(compile_criteria(item, dialect))
    raise TypeError(f"not criteria: {criteria!r}")
