"""Bundles and saved scopes, and resolving a flow's references to them.

A bundle is a named, reusable set of targets (integration + type + selector + permissions, or a saved
scope + permissions); many flows use one bundle with their own requesters, approvers and durations. A
bundle cannot contain a bundle. A scope is a named query in the scope query language; a flow target
or a bundle member may be `{scope: NAME, permissions: [...]}`, and a selector may say `scope: NAME`.

`resolve_flow` replaces every such reference by what it names *now*, so the policy evaluator only
ever sees plain targets whose selectors carry their queries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.domain.flows import MAX_TARGETS, FlowSpec, Target
from sluice.domain.query_language import readable_query
from sluice.domain.selectors import Exclusion, Selector
from sluice.domain.text import Description, QueryText, Token

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MAX_NAME = 120
NAME_WORDS = "a name of letters, digits, '.', '-' and '_', starting with a letter or digit"


def _name(value: str) -> str:
    if not NAME.match(value) or len(value) > MAX_NAME:
        raise ValueError(
            f"{value!r} is not a valid name: letters, digits, '.', '-' and '_', starting with a letter or "
            "digit, at most 120"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScopeSpec(_Strict):
    name: Token
    description: Description = ""
    query: QueryText

    _valid_name = field_validator("name")(_name)

    @field_validator("query")
    @classmethod
    def _readable(cls, value: str) -> str:
        return readable_query(value)


class BundleSpec(_Strict):
    name: Token
    description: Description = ""
    targets: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)

    _valid_name = field_validator("name")(_name)

    @field_validator("targets")
    @classmethod
    def _no_bundles(cls, value: list[Target]) -> list[Target]:
        for target in value:
            if target.bundle is not None:
                raise ValueError("a bundle cannot contain a bundle; list that bundle's targets instead")
        return value


def _and(*queries: str | None) -> str | None:
    present = [q for q in queries if q]
    if not present:
        return None
    return present[0] if len(present) == 1 else " and ".join(f"({q})" for q in present)


# A saved scope nobody defined selects nothing; this query is false for every resource.
_NOTHING = 'id in [""]'


def _scope_query(name: str, scopes: Mapping[str, str]) -> str:
    return scopes.get(name, _NOTHING)


def resolve_selector(select: Selector, scopes: Mapping[str, str]) -> Selector:
    """The selector with `scope: NAME` (also inside `exclude`) replaced by the scope's query."""
    if not select.scope_names():
        return select
    exclude = select.exclude
    if exclude is not None and exclude.scope:
        query = _and(exclude.query, _scope_query(exclude.scope, scopes))
        exclude = Exclusion.model_construct(**(exclude.__dict__ | {"scope": None, "query": query}))
    query = _and(select.query, _scope_query(select.scope, scopes) if select.scope else None)
    return Selector.model_construct(**(select.__dict__ | {"scope": None, "query": query, "exclude": exclude}))


def resolve_targets(
    targets: list[Target], bundles: Mapping[str, BundleSpec], scopes: Mapping[str, str]
) -> list[Target]:
    """Plain targets only: bundles expanded into their members, scopes into selector queries. A bundle
    that does not exist stays as it is (the evaluator says so and it covers nothing)."""
    plain: list[Target] = []
    for target in targets:
        if target.bundle is not None:
            bundle = bundles.get(target.bundle)
            if bundle is None:
                plain.append(target)
                continue
            plain.extend(resolve_targets(bundle.targets, {}, scopes))
        elif target.scope is not None:
            select = Selector.model_construct(
                **(Selector().__dict__ | {"query": _scope_query(target.scope, scopes)})
            )
            plain.append(Target.model_construct(**(target.__dict__ | {"scope": None, "select": select})))
        elif target.select.scope_names():
            select = resolve_selector(target.select, scopes)
            plain.append(Target.model_construct(**(target.__dict__ | {"select": select})))
        else:
            plain.append(target)
    return plain


def resolve_flow(flow: FlowSpec, bundles: Mapping[str, BundleSpec], scopes: Mapping[str, str]) -> FlowSpec:
    if not any(t.bundle or t.scope or t.select.scope_names() for t in flow.targets):
        return flow
    return flow.model_copy(update={"targets": resolve_targets(flow.targets, bundles, scopes)})


def bundle_names(flow: FlowSpec) -> list[str]:
    return [t.bundle for t in flow.targets if t.bundle]
