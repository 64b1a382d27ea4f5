"""The criteria tree every resource selector becomes, and its in-memory evaluation.

A flow target's `select`, a bundle member and a saved scope's query all compile to one tree of
`Condition`s joined by `AllOf`, `AnyOf` and `Not`. The same tree is evaluated two ways that must agree:
here, on one resource in memory (checking a request, explaining a refusal), and in
`store/selector_sql.py`, as SQL over the resource and tag tables (listing what may be requested).

Semantics, shared by both evaluators:

* text comparisons are exact (case-sensitive, no collation);
* `parent` is any ancestor: `parent = "pg/appdb"` holds for every resource whose path starts with
  `pg/appdb/`; `parent exists` holds for a resource below a top-level one;
* a missing tag satisfies no positive operator, so `tag.env != "prod"` and `tag.env not_in [...]`
  hold for a resource without an `env` tag (they are exactly `not (tag.env = ...)`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Op(StrEnum):
    EQ = "="
    NE = "!="
    IN = "in"
    NOT_IN = "not_in"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    EXISTS = "exists"


FIELDS = ("integration", "type", "name", "path", "id", "parent", "tag")
# Operators that only make sense on plain text; `parent` is an ancestor test, not a string.
PARENT_OPS = frozenset({Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.EXISTS})
NEGATIVE = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN}


class Subject(Protocol):
    """What the criteria read from a resource (`domain.policy.ResourceRef` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def integration(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Condition:
    field: str  # one of FIELDS
    op: Op
    values: tuple[str, ...] = ()
    key: str = ""  # the tag key, for field == "tag"

    def describe(self) -> str:
        name = f"tag.{self.key}" if self.field == "tag" else self.field
        if self.op == Op.EXISTS:
            return f"{name} exists"
        if self.op in (Op.IN, Op.NOT_IN):
            return f"{name} {self.op.value} [{', '.join(json.dumps(v) for v in self.values)}]"
        return f"{name} {self.op.value} {json.dumps(self.values[0])}"


@dataclass(frozen=True)
class AllOf:
    items: tuple[Criteria, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Criteria, ...]


@dataclass(frozen=True)
class Not:
    item: Criteria
    label: str = ""  # how a person wrote it, e.g. "exclude.names", for explanations


Criteria = Condition | AllOf | AnyOf | Not
EVERYTHING = AllOf(())


def condition(field: str, op: Op | str, values: tuple[str, ...] | list[str] = (), key: str = "") -> Condition:
    """A checked condition. `parent` values lose a trailing `/`; raises ValueError on a bad combination."""
    op = Op(op)
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; fields: {', '.join(FIELDS)}, tag.KEY")
    if field == "tag" and not key:
        raise ValueError("a tag condition names its key: tag.KEY")
    if field == "parent" and op not in PARENT_OPS:
        raise ValueError(f"parent supports {', '.join(sorted(PARENT_OPS))}, not {op.value}")
    values = tuple(values)
    if op == Op.EXISTS:
        if values:
            raise ValueError("exists takes no value")
    elif op in (Op.IN, Op.NOT_IN):
        if not values:
            raise ValueError(f"{op.value} needs a list with at least one value")
    elif len(values) != 1:
        raise ValueError(f"{op.value} compares with exactly one value")
    if field == "parent":
        values = tuple(v.rstrip("/") for v in values)
        if any(not v for v in values):
            raise ValueError("a parent is a resource path, not empty")
    return Condition(field, op, values, key)


def _field_value(subject: Subject, field: str, key: str) -> str | None:
    if field == "tag":
        return subject.tags.get(key)
    return str(getattr(subject, field))


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent + "/")


def _positive(cond: Condition, subject: Subject) -> bool:
    """Evaluate a condition whose operator is not negative."""
    if cond.field == "parent":
        if cond.op == Op.EXISTS:
            return subject.path.count("/") >= 2
        return any(_under(subject.path, p) for p in cond.values)
    value = _field_value(subject, cond.field, cond.key)
    if value is None:
        return False
    match cond.op:
        case Op.EXISTS:
            return True
        case Op.EQ | Op.IN:
            return value in cond.values
        case Op.CONTAINS:
            return cond.values[0] in value
        case Op.STARTS_WITH:
            return value.startswith(cond.values[0])
        case Op.ENDS_WITH:
            return value.endswith(cond.values[0])
    raise ValueError(f"operator {cond.op} is not positive")


def holds(criteria: Criteria, subject: Subject) -> bool:
    """Does the resource satisfy the criteria?"""
    match criteria:
        case Condition(op=op) if op in NEGATIVE:
            return not _positive(
                Condition(criteria.field, NEGATIVE[op], criteria.values, criteria.key), subject
            )
        case Condition():
            return _positive(criteria, subject)
        case AllOf(items=items):
            return all(holds(i, subject) for i in items)
        case AnyOf(items=items):
            return any(holds(i, subject) for i in items)
        case Not(item=item):
            return not holds(item, subject)
    raise TypeError(f"not criteria: {criteria!r}")


def reads_tags(criteria: Criteria) -> bool:
    """Whether evaluating the criteria can look at a resource's tags: when not, a resource's tags
    need not be read to evaluate them."""
    match criteria:
        case Condition(field=field):
            return field == "tag"
        case AllOf(items=items) | AnyOf(items=items):
            return any(reads_tags(i) for i in items)
        case Not(item=item):
            return reads_tags(item)
    raise TypeError(f"not criteria: {criteria!r}")


def describe(criteria: Criteria) -> str:
    match criteria:
        case Condition():
            return criteria.describe()
        case AllOf(items=items):
            return " and ".join(_wrapped(i) for i in items) if items else "any resource"
        case AnyOf(items=items):
            return " or ".join(_wrapped(i) for i in items) if items else "no resource"
        case Not(item=item):
            return f"not {_wrapped(item)}"
    raise TypeError(f"not criteria: {criteria!r}")


def _wrapped(criteria: Criteria) -> str:
    text = describe(criteria)
    return f"({text})" if isinstance(criteria, AllOf | AnyOf) and len(criteria.items) > 1 else text


def _condition_miss(cond: Condition, subject: Subject) -> str:
    if cond.field == "tag":
        value = subject.tags.get(cond.key)
        if value is None and cond.op not in NEGATIVE:
            return f"tag {cond.key} is missing (wanted {cond.describe()})"
        return f"tag {cond.key} is {json.dumps(value)} (wanted {cond.describe()})"
    if cond.field == "parent":
        return f"{subject.path} is not {cond.describe()}"
    value = json.dumps(_field_value(subject, cond.field, cond.key))
    return f"{cond.field} is {value} (wanted {cond.describe()})"


def first_miss(criteria: Criteria, subject: Subject) -> str | None:
    """None when the resource satisfies the criteria; otherwise the first reason it does not, in words."""
    if holds(criteria, subject):
        return None
    match criteria:
        case Condition():
            return _condition_miss(criteria, subject)
        case AllOf(items=items):
            for item in items:
                miss = first_miss(item, subject)
                if miss is not None:
                    return miss
        case AnyOf(items=items):
            if not items:
                return "the selector matches no resource (does it name an unknown scope?)"
            if len(items) == 1:
                return first_miss(items[0], subject)
            return "none of: " + "; ".join(m for m in (first_miss(i, subject) for i in items) if m)
        case Not(item=item, label=label):
            matched = _matched_part(item, subject)
            by = f" {label}" if label else ""
            return f"excluded by{by} {matched}"
    return f"does not satisfy {describe(criteria)}"


def _matched_part(criteria: Criteria, subject: Subject) -> str:
    """For an exclusion that holds: the part of it that matched (the first alternative that holds)."""
    if isinstance(criteria, AnyOf):
        for item in criteria.items:
            if holds(item, subject):
                return _matched_part(item, subject)
    return describe(criteria)
