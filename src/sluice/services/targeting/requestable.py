"""What can I request: every (resource, permission) the caller may ask for, with the flow that would
allow it, its maximum duration and who would approve; and the bundles they may request.

Fast whatever the inventory's size: the flows whose requesters include the caller are found first
(people side, in memory). Each of their distinct targets becomes one small query that walks the
`(integration_id, type, path)` index in path order and stops after `offset + limit` matches; the
parts are merged by path (a single OR query would make the store scan in path order past everything
the caller may not see, and a single UNION has a new shape, so a new compilation, per set of flows).
Each page row is then checked in memory by the policy evaluator (the same code that checks a
request), which also picks the flow. Approvers are shown as the flow names them; `explain` resolves
the people. Paths are compared in code-point order: the store's collation must be binary or C.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, union
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.criteria import Criteria
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import FlowSpec, Target, Trigger
from sluice.domain.policy import Person, ResourceRef, covers, evaluate, flow_for_units, is_requester
from sluice.domain.selectors import parse_tag_rule
from sluice.services.targeting.bundles import current_flows, flows_with_bundles
from sluice.services.targeting.tags import tags_of
from sluice.store.queries import person_of
from sluice.store.selector_sql import compile_criteria, path_under
from sluice.store.tables import Identity, Integration, Resource


@dataclass(frozen=True)
class RequestableFilter:
    integration: str | None = None
    type: str | None = None
    path_prefix: str | None = None
    tag: str | None = None  # a tag rule: key=value, key, key != value, key in [a, b]
    q: str | None = None  # text in the name or path


@dataclass(frozen=True)
class Option:
    permission: str
    flow: str
    max_duration: str
    approval_required: bool
    approvers: list[str]
    other_flows: list[str]


@dataclass(frozen=True)
class RequestableResource:
    resource: ResourceRef
    options: list[Option]


@dataclass(frozen=True)
class RequestableBundle:
    bundle: str
    flow: str
    max_duration: str
    approval_required: bool
    approvers: list[str]


@dataclass
class RequestablePage:
    items: list[RequestableResource]
    next_offset: int | None
    bundles: list[RequestableBundle] = field(default_factory=list)


def requesting_flows(flows: Sequence[FlowSpec], person: Person) -> list[FlowSpec]:
    """Self-serve flows that are on and name the person among their requesters."""
    return [f for f in flows if f.active and f.trigger == Trigger.SELF_SERVE and is_requester(f, person)]


def integration_kinds(session: Session) -> dict[str, tuple[str, str]]:
    """Integration name -> (id, kind)."""
    rows = session.execute(select(Integration.name, Integration.id, Integration.kind))
    return {name: (iid, kind) for name, iid, kind in rows}


def _valid_types(kinds: dict[str, tuple[str, str]], permissions: list[str]) -> set[str]:
    types: set[str] = set()
    for _, kind in kinds.values():
        for type_, granted in connector_class(kind).permissions.items():
            if set(permissions) & set(granted):
                types.add(type_)
    return types


def target_clause(
    target: Target, kinds: dict[str, tuple[str, str]], dialect: str
) -> ColumnElement[bool] | None:
    """SQL for the resources a plain target covers; None when it can cover none."""
    criteria = target.select.criteria()
    if target.bundle is not None:
        return None
    if target.integration is None:
        types = _valid_types(kinds, target.permissions)
        if not types:
            return None
        return and_(Resource.type.in_(sorted(types)), compile_criteria(criteria, dialect))
    found = kinds.get(target.integration)
    if found is None:
        return None
    return and_(
        Resource.integration_id == found[0], Resource.type == target.type, compile_criteria(criteria, dialect)
    )


@lru_cache(maxsize=8192)
def _compiled(criteria: Criteria, dialect: str) -> ColumnElement[bool]:
    """SQL constructs are immutable: one per distinct criteria is enough for the process."""
    return compile_criteria(criteria, dialect)


Slices = dict[tuple[str, str], list[Criteria]]


def target_slices(flows: Sequence[FlowSpec], kinds: dict[str, tuple[str, str]]) -> Slices:
    """The distinct criteria of the flows' targets, by (integration id, resource type). A scope target
    (no integration) applies to every type, in every integration, that has one of its permissions."""
    slices: Slices = {}
    for flow in flows:
        for target in flow.targets:
            if target.bundle is not None:
                continue
            criteria = target.select.criteria()
            if target.integration is None:
                places = [
                    (iid, type_)
                    for iid, kind in kinds.values()
                    for type_, granted in connector_class(kind).permissions.items()
                    if set(target.permissions) & set(granted)
                ]
            else:
                found = kinds.get(target.integration)
                places = [(found[0], target.type or "")] if found else []
            for place in places:
                known = slices.setdefault(place, [])
                if criteria not in known:
                    known.append(criteria)
    return slices


def selection_clause(
    flows: Sequence[FlowSpec], kinds: dict[str, tuple[str, str]], dialect: str
) -> ColumnElement[bool]:
    """The OR of every distinct target of the flows, as one WHERE clause."""
    clauses = [
        and_(
            Resource.integration_id == iid,
            Resource.type == type_,
            or_(*(_compiled(c, dialect) for c in crits)),
        )
        for (iid, type_), crits in target_slices(flows, kinds).items()
    ]
    return or_(false(), *clauses) if clauses else false()


def page_parts(
    slices: Slices, filters: list[ColumnElement[bool]], dialect: str, enough: int
) -> list[Select[str, str]]:
    """For each distinct target, its first `enough` matches in path order: an index walk over
    (integration, type, path) that stops early. Each part's shape depends only on its target, so the
    store's compiled-statement cache serves every caller whose flows share that target."""
    if not filters:
        return [
            _part(iid, type_, c, dialect, enough) for (iid, type_), crits in slices.items() for c in crits
        ]
    return [
        _part(iid, type_, c, dialect, enough).where(*filters)
        for (iid, type_), crits in slices.items()
        for c in crits
    ]


@lru_cache(maxsize=8192)
def _part(iid: str, type_: str, criteria: Criteria, dialect: str, enough: int) -> Select[str, str]:
    return (
        select(Resource.path, Resource.id)
        .where(
            Resource.integration_id == iid,
            Resource.type == type_,
            Resource.deleted_at.is_(None),
            _compiled(criteria, dialect),
        )
        .order_by(Resource.path)
        .limit(enough)
    )


def page_statement(parts: list[Select[str, str]], limit: int, offset: int) -> Select[str]:
    """The same page as one statement (the parts united); what a hand-written query would do."""
    if not parts:
        return select(Resource.path).where(false())
    united = union(*(select(p.subquery()) for p in parts)).subquery()
    return select(united.c.path).order_by(united.c.path).limit(limit).offset(offset)


def page_ids(session: Session, parts: list[Select[str, str]], limit: int, offset: int) -> list[str]:
    """Run the parts and merge them in path order. Cost follows the page size and the number of
    distinct targets, not the size of the inventory."""
    found: dict[str, str] = {}
    connection = session.connection()  # plain rows: no ORM work per part
    for part in parts:
        found.update((row[0], row[1]) for row in connection.execute(part))
    return [found[path] for path in sorted(found)[offset : offset + limit]]


def _filters(
    where: RequestableFilter, kinds: dict[str, tuple[str, str]], dialect: str
) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if where.integration:
        found = kinds.get(where.integration)
        clauses.append(Resource.integration_id == found[0] if found else false())
    if where.type:
        clauses.append(Resource.type == where.type)
    if where.path_prefix:
        clauses.append(path_under(where.path_prefix, dialect))
    if where.tag:
        try:
            rule = parse_tag_rule(where.tag)
        except ValueError as exc:
            raise InvalidInput(f"tag filter: {exc}") from exc
        clauses.append(compile_criteria(rule, dialect))
    if where.q:
        clauses.append(
            or_(
                Resource.name.icontains(where.q, autoescape=True),
                Resource.path.icontains(where.q, autoescape=True),
            )
        )
    return clauses


def approver_words(flow: FlowSpec) -> list[str]:
    """Who would approve, as the flow names them (a group, a person, the manager). Listing pages stay
    cheap this way; `explain` names the people."""
    policy = flow.approval_policy
    return [] if policy is None else [group.describe() for group in policy.groups]


class _Choices:
    """The requesting flows' targets, by (integration, type), so each page row meets only the targets
    that can cover it."""

    def __init__(self, flows: Sequence[FlowSpec]) -> None:
        self.by_place: dict[tuple[str | None, str | None], list[tuple[FlowSpec, Target]]] = {}
        for flow in flows:
            for target in flow.targets:
                self.by_place.setdefault((target.integration, target.type), []).append((flow, target))

    def candidates(self, ref: ResourceRef) -> list[tuple[FlowSpec, Target]]:
        return [*self.by_place.get((ref.integration, ref.type), []), *self.by_place.get((None, None), [])]


def options_for(ref: ResourceRef, kind: str, choices: _Choices, person: Person) -> list[Option]:
    """Each permission the person may request on the resource, with the flow a request would use."""
    granted = connector_class(kind).permissions.get(ref.type, ())
    by_permission: dict[str, list[FlowSpec]] = {}
    for flow, target in choices.candidates(ref):
        for permission in target.permissions:
            allowing = by_permission.setdefault(permission, [])
            if permission not in granted or flow in allowing:
                continue
            if covers(target, ref, permission) and evaluate(flow, person, ref, permission).allowed:
                allowing.append(flow)
    options = []
    for permission in granted:
        allowing = by_permission.get(permission, [])
        if not allowing:
            continue
        chosen = flow_for_units(allowing, person, [(ref, permission)]) if len(allowing) > 1 else None
        best = chosen or allowing[0]
        options.append(
            Option(
                permission=permission,
                flow=best.name,
                max_duration=best.max_duration,
                approval_required=not best.auto_approve,
                approvers=approver_words(best),
                other_flows=sorted(f.name for f in allowing if f is not best),
            )
        )
    return options


def requestable(
    session: Session, *, identity: Identity, where: RequestableFilter, limit: int, offset: int, now: datetime
) -> RequestablePage:
    person = person_of(session, identity, now)
    flows = requesting_flows(current_flows(session), person)
    if not flows:
        return RequestablePage([], None)
    kinds = integration_kinds(session)
    dialect = session.get_bind().dialect.name
    parts = page_parts(
        target_slices(flows, kinds), _filters(where, kinds, dialect), dialect, offset + limit + 1
    )
    ids = page_ids(session, parts, limit + 1, offset)
    by_id = {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(ids)))} if ids else {}
    rows = [by_id[i] for i in ids]
    more = len(rows) > limit
    rows = rows[:limit]
    kind_of = {iid: kind for iid, kind in kinds.values()}
    choices = _Choices(flows)
    items = []
    name_of = {iid: name for name, (iid, _) in kinds.items()}
    tags = tags_of(session, [r.id for r in rows])
    refs = [
        ResourceRef(name_of[r.integration_id], r.type, r.name, r.path, r.id, tags.get(r.id, {})) for r in rows
    ]
    for row, ref in zip(rows, refs, strict=True):
        options = options_for(ref, kind_of[row.integration_id], choices, person)
        if options:
            items.append(RequestableResource(ref, options))
    bundles = _bundles(session, {f.name for f in flows}) if offset == 0 else []
    return RequestablePage(items, offset + limit if more else None, bundles)


def _bundles(session: Session, requesting: set[str]) -> list[RequestableBundle]:
    units = [
        RequestableBundle(name, flow.name, flow.max_duration, not flow.auto_approve, approver_words(flow))
        for flow, names in flows_with_bundles(session)
        if flow.name in requesting
        for name in names
    ]
    return sorted(units, key=lambda u: (u.bundle, u.flow))
