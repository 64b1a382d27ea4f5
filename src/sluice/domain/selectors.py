"""Selectors: which resources of a target's type a flow or bundle means, named by what they are.

    select:
      under: [prod-pg/appdb]                # anywhere inside these parents, at any depth
      tags: ["pii=true", "env in [prod, staging]", "owner", "tier != gold"]
      names: [orders]                       # a name or a full path
      ids: [res_0a1b2c3d4e5f]
      query: 'name starts_with "fact_"'     # the scope query language
      scope: finance-tables                 # a saved scope, by name
      exclude:                              # minus anything matching any one of these
        names: [prod-pg/appdb/public/secrets]
        tags: ["pii=true"]

Every part given must hold (they are joined with `and`); nothing given means every resource of the
type, now and in the future. `exclude` removes a resource that matches any one of its parts. A selector
compiles to `domain.criteria`, evaluated in memory here and as SQL by `store.selector_sql`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from pydantic.json_schema import JsonDict

from sluice.domain.criteria import EVERYTHING, AllOf, AnyOf, Condition, Criteria, Not, Op, condition
from sluice.domain.query_language import parse_query, readable_query
from sluice.domain.text import MAX_ITEMS, QueryText, Reference, Token

_TAG_KEY = r"[A-Za-z0-9][A-Za-z0-9_.:/-]*"
_TAG_RULE = re.compile(
    rf"^\s*(?P<key>{_TAG_KEY})\s*(?:(?P<op>!=|=|\s+in\s+|\s+not_in\s+)\s*(?P<value>.*?))?\s*$", re.IGNORECASE
)


def parse_tag_rule(text: str) -> Condition:
    """`key=value`, `key != value`, `key in [a, b]`, `key not_in [a, b]`, or just `key` (present)."""
    match = _TAG_RULE.match(text)
    if match is None:
        raise ValueError(
            f"tag rule {text!r} is not one of: key=value, key != value, key in [a, b], key not_in [a, b], key"
        )
    key, op, value = match.group("key"), match.group("op"), match.group("value")
    if op is None:
        return condition("tag", Op.EXISTS, (), key)
    op = op.strip().lower()
    if op in ("in", "not_in"):
        if not (value.startswith("[") and value.endswith("]")):
            raise ValueError(f"tag rule {text!r}: {op} takes a list like [a, b]")
        values = [v.strip().strip('"') for v in value[1:-1].split(",")]
        if not values or any(not v for v in values):
            raise ValueError(f"tag rule {text!r}: the list holds an empty value")
        return condition("tag", Op(op), values, key)
    value = value.strip('"')
    if not value:
        raise ValueError(f"tag rule {text!r} has no value after {op}; write just the key to mean present")
    return condition("tag", Op(op), (value,), key)


def _non_empty(value: list[str] | None, what: str) -> list[str] | None:
    if value is not None:
        if not value:
            raise ValueError(f"{what} must list at least one entry, or be left out")
        if any(not isinstance(v, str) or not v.strip() for v in value):
            raise ValueError(f"{what} entries must be non-empty text")
    return value


# A list given must hold an entry (`_non_empty` says so in words); the schema states it as `minItems`.
_NOT_EMPTY: JsonDict = {"minItems": 1}


class _Parts(BaseModel):
    """The parts a selector and its exclusions share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    names: list[Reference] | None = Field(default=None, max_length=MAX_ITEMS, json_schema_extra=_NOT_EMPTY)
    ids: list[Reference] | None = Field(default=None, max_length=MAX_ITEMS, json_schema_extra=_NOT_EMPTY)
    tags: list[Reference] | None = Field(default=None, max_length=MAX_ITEMS, json_schema_extra=_NOT_EMPTY)
    under: list[Reference] | None = Field(default=None, max_length=MAX_ITEMS, json_schema_extra=_NOT_EMPTY)
    query: QueryText | None = None
    scope: Token | None = None

    @field_validator("names", "ids", "tags", "under")
    @classmethod
    def _lists(cls, value: list[str] | None, info: Any) -> list[str] | None:
        return _non_empty(value, info.field_name)

    @field_validator("tags")
    @classmethod
    def _tag_rules(cls, value: list[str] | None) -> list[str] | None:
        for rule in value or []:
            parse_tag_rule(rule)
        return value

    @field_validator("under")
    @classmethod
    def _parents(cls, value: list[str] | None) -> list[str] | None:
        for parent in value or []:
            if not parent.rstrip("/"):
                raise ValueError(f"under names a resource path like 'prod-pg/appdb', not {parent!r}")
        return value

    @field_validator("query")
    @classmethod
    def _readable_query(cls, value: str | None) -> str | None:
        if value is not None:
            readable_query(value)
        return value

    def part_criteria(self, scopes: dict[str, Criteria] | None) -> list[tuple[str, Criteria]]:
        """Each part given, as (its name, its criteria)."""
        parts: list[tuple[str, Criteria]] = []
        if self.names:
            parts.append(
                ("names", AnyOf((condition("name", Op.IN, self.names), condition("path", Op.IN, self.names))))
            )
        if self.ids:
            parts.append(("ids", condition("id", Op.IN, self.ids)))
        if self.under:
            parts.append(("under", condition("parent", Op.IN, self.under)))
        if self.tags:
            rules = tuple(parse_tag_rule(t) for t in self.tags)
            parts.append(("tags", rules[0] if len(rules) == 1 else AllOf(rules)))
        if self.query:
            parts.append(("query", parse_query(self.query)))
        if self.scope:
            found = (scopes or {}).get(self.scope)
            # An unknown scope selects nothing: failing closed, and `explain` says so.
            parts.append((f"scope {self.scope}", found if found is not None else AnyOf(())))
        return parts


class Exclusion(_Parts):
    pass


class Selector(_Parts):
    """Which resources of the target's type: every one by default (see the module docstring)."""

    exclude: Exclusion | None = None

    _criteria: Criteria | None = PrivateAttr(default=None)

    @property
    def is_any(self) -> bool:
        return self == Selector()

    def scope_names(self) -> set[str]:
        names = {self.scope} if self.scope else set()
        if self.exclude and self.exclude.scope:
            names.add(self.exclude.scope)
        return names

    def criteria(self, scopes: dict[str, Criteria] | None = None) -> Criteria:
        """The selector as criteria; `scopes` maps saved scope names to their parsed queries."""
        if scopes is None and not self.scope_names():
            if self._criteria is None:
                self._criteria = self._build(None)  # selectors are frozen: safe to keep
            return self._criteria
        return self._build(scopes)

    def _build(self, scopes: dict[str, Criteria] | None) -> Criteria:
        included = [c for _, c in self.part_criteria(scopes)]
        include: Criteria = included[0] if len(included) == 1 else AllOf(tuple(included))
        if self.exclude is None:
            return include
        excluded = self.exclude.part_criteria(scopes)
        if not excluded:
            return include
        alternatives = tuple(Not(c, f"exclude.{name}") for name, c in excluded)
        return AllOf((*([include] if include != EVERYTHING else []), *alternatives))
