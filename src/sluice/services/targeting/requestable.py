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
A caller walking the whole catalogue passes each page's `next_after` as `after` instead of an offset:
every part then starts at that path through the index, so each page costs its own size (with offsets,
every part reads `offset + limit` rows and a full walk grows with the square of its length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, false, or_, select
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.criteria import Criteria, holds
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import FlowSpec
from sluice.domain.policy import Person, ResourceRef, is_requester, is_self_serve, preferred_flow
from sluice.domain.selectors import parse_tag_rule
from sluice.services.targeting.bundles import FlowSet, current_flow_set
from sluice.services.targeting.tags import tags_of
from sluice.services.targeting.target_queries import integration_kinds, page_ids, target_slices
from sluice.store.queries import person_of
from sluice.store.selector_sql import compile_criteria, path_under
from sluice.store.tables import Identity, Resource


@dataclass(frozen=True)
class RequestableFilter:
    integration: str | None = None
    type: str | None = None
    path_prefix: str | None = None
    tag: str | None = None  # a tag rule: key=value, key, key != value, key in [a, b]
    q: str | None = None  # text in the name or path
    after: str | None = None  # only paths after this one: the previous page's `next_after`


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
    # the last path this page looked at, for `RequestableFilter.after`; None on the last page
    next_after: str | None = None


def requesting_flows(flows: Sequence[FlowSpec], person: Person) -> list[FlowSpec]:
    """Self-serve flows that are on and name the person among their requesters."""
    return [f for f in flows if is_self_serve(f) and is_requester(f, person)]


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
    if where.after is not None:
        clauses.append(Resource.path > where.after)
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
    that can cover it. Targets with equal selectors share one entry, so a row evaluates each distinct
    selector once however many flows name it; and an option is built once per (permission, allowing
    flows) rather than once per row: rows of a page mostly meet the same few sets of flows."""

    def __init__(self, flows: Sequence[FlowSpec]) -> None:
        grouped: dict[tuple[str | None, str | None], dict[Criteria, list[tuple[FlowSpec, list[str]]]]] = {}
        for flow in flows:
            for target in flow.targets:
                if target.bundle is not None:  # resolved flows name none; a dangling one covers nothing
                    continue
                by_criteria = grouped.setdefault((target.integration, target.type), {})
                by_criteria.setdefault(target.select.criteria(), []).append((flow, target.permissions))
        self.by_place = {place: list(by_criteria.items()) for place, by_criteria in grouped.items()}
        self._anywhere = self.by_place.get((None, None), [])
        self._options: dict[tuple[str, tuple[int, ...]], Option] = {}

    def candidates(self, ref: ResourceRef) -> list[tuple[Criteria, list[tuple[FlowSpec, list[str]]]]]:
        """The distinct selectors that may cover the resource, each with the flows (and the
        permissions their target grants) that name it. Scope targets (no integration) fit any row."""
        return [*self.by_place.get((ref.integration, ref.type), []), *self._anywhere]

    def option(self, permission: str, allowing: list[FlowSpec]) -> Option | None:
        """The option a request for `permission` would use, given the flows that allow it."""
        key = (permission, tuple(id(f) for f in allowing))  # the flows live as long as `self`
        if key not in self._options:
            best = preferred_flow(allowing)
            if best is None:
                return None
            self._options[key] = Option(
                permission=permission,
                flow=best.name,
                max_duration=best.max_duration,
                approval_required=not best.auto_approve,
                approvers=approver_words(best),
                other_flows=sorted(f.name for f in allowing if f is not best),
            )
        return self._options[key]


def options_for(ref: ResourceRef, granted: Sequence[str], choices: _Choices, person: Person) -> list[Option]:
    """Each permission the person may request on the resource, of those its connector `granted` on its
    type, with the flow a request would use.

    The choices are `requesting_flows`: on, self-serve and naming the person. For those, `evaluate`
    allows (resource, permission) exactly when the person is active and a target covers it (`covers`:
    its integration and type, which `candidates` match, one of its permissions and its selector), so
    that is what is checked here, row by row; the flow chosen among several is `preferred_flow`, as a
    request would choose it (`flow_for_units`)."""
    if not person.active:
        return []
    by_permission: dict[str, list[FlowSpec]] = {}
    for selected, naming in choices.candidates(ref):
        if not holds(selected, ref):
            continue
        for flow, permissions in naming:
            for permission in permissions:
                if permission not in granted:
                    continue
                allowing = by_permission.setdefault(permission, [])
                # `is`, not `in`: comparing flows for equality compares every field of both
                if not any(f is flow for f in allowing):
                    allowing.append(flow)
    options = []
    for permission in granted:
        option = choices.option(permission, by_permission.get(permission, []))
        if option is not None:
            options.append(option)
    return options


_PAGE_ROWS = select(Resource.id, Resource.integration_id, Resource.type, Resource.name, Resource.path).where(
    Resource.id.in_(bindparam("ids", expanding=True))
)


def requestable(
    session: Session, *, identity: Identity, where: RequestableFilter, limit: int, offset: int, now: datetime
) -> RequestablePage:
    person = person_of(session, identity, now)
    flow_set = current_flow_set(session)  # the flows, and on a first page their bundles, read once
    flows = flow_set.self_serve.naming(person)  # `requesting_flows`, through an index
    if not flows:
        return RequestablePage([], None)
    kinds = integration_kinds(session, open_only=True)  # a disabled or retiring integration offers nothing
    dialect = session.get_bind().dialect.name
    ids = page_ids(session, target_slices(flows, kinds), _filters(where, kinds, dialect), limit + 1, offset)
    # plain rows of the columns used, not ORM objects
    by_id = {row.id: row for row in session.execute(_PAGE_ROWS, {"ids": ids})} if ids else {}
    rows = [by_id[i] for i in ids]
    more = len(rows) > limit
    rows = rows[:limit]
    # each integration's connector, looked up once for the page, not once per row
    permissions_of = {iid: connector_class(kind).permissions for iid, kind in kinds.values()}
    choices = _Choices(flows)
    items = []
    name_of = {iid: name for name, (iid, _) in kinds.items()}
    tags = tags_of(session, [r.id for r in rows])
    for row in rows:
        ref = ResourceRef(
            name_of[row.integration_id], row.type, row.name, row.path, row.id, tags.get(row.id, {})
        )
        options = options_for(ref, permissions_of[row.integration_id].get(row.type, ()), choices, person)
        if options:
            items.append(RequestableResource(ref, options))
    first_page = offset == 0 and where.after is None
    bundles = _bundles(flow_set, {f.name for f in flows}) if first_page else []
    return RequestablePage(
        items, offset + limit if more else None, bundles, rows[-1].path if more and rows else None
    )


def _bundles(flow_set: FlowSet, requesting: set[str]) -> list[RequestableBundle]:
    units = [
        RequestableBundle(name, flow.name, flow.max_duration, not flow.auto_approve, approver_words(flow))
        for flow, names in flow_set.naming_bundles
        if flow.name in requesting
        for name in names
    ]
    return sorted(units, key=lambda u: (u.bundle, u.flow))
