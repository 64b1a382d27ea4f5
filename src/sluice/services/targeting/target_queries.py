"""SQL for the resources the requesting flows' targets cover, walked a page at a time: one small
part per distinct target, each an index walk over `(integration_id, type, path)` that stops early, then
merged by path (see `requestable.py` for why not one OR or one UNION)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Dialect, Select, and_, false, or_, select, union
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.criteria import Criteria
from sluice.domain.flows import FlowSpec, Target
from sluice.domain.lifecycle import Lifecycle
from sluice.store.selector_sql import compile_criteria
from sluice.store.tables import Integration, Resource

_KINDS = select(Integration.name, Integration.id, Integration.kind)
_OPEN_KINDS = _KINDS.where(Integration.disabled.is_(False), Integration.lifecycle == Lifecycle.ACTIVE.value)


def integration_kinds(session: Session, *, open_only: bool = False) -> dict[str, tuple[str, str]]:
    """Integration name -> (id, kind). `open_only`: of the integrations that take requests now
    (`closed_reason` says why the others do not), for what is offered, which must be what a submit
    accepts."""
    return {name: (iid, kind) for name, iid, kind in session.execute(_OPEN_KINDS if open_only else _KINDS)}


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


def page_ids(
    session: Session, slices: Slices, filters: list[ColumnElement[bool]], limit: int, offset: int
) -> list[str]:
    """Run the parts (`page_parts`) and merge them in path order. Cost follows the page size and the
    number of distinct targets, not the size of the inventory."""
    connection = session.connection()  # plain rows: no ORM work per part
    dialect, enough = connection.dialect, offset + limit
    found: dict[str, str] = {}
    if filters:
        for part in page_parts(slices, filters, dialect.name, enough):
            found.update(connection.execute(part).all())  # fetched at once, not row by row
    else:  # an unfiltered page, the usual one: each part's SQL is ready
        for (iid, type_), crits in slices.items():
            for criteria in crits:
                found.update(
                    connection.exec_driver_sql(*_part_sql(iid, type_, criteria, dialect, enough)).all()
                )
    return [found[path] for path in sorted(found)[offset : offset + limit]]


DriverParameters = tuple[Any, ...] | dict[str, Any]


@lru_cache(maxsize=8192)
def _part_sql(
    iid: str, type_: str, criteria: Criteria, dialect: Dialect, enough: int
) -> tuple[str, DriverParameters]:
    """An unfiltered part as the driver's SQL text and parameters, compiled once for the process.
    Executing a statement through SQLAlchemy walks it each time to find its compiled form (a page
    of ~20 parts spent a third of its time so), and an unfiltered part is the same statement, with
    the same parameters, for every caller whose flows share its target."""
    compiled = _part(iid, type_, criteria, dialect.name, enough).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    # Values go to the driver as they are: a part binds only text and integers, which no dialect
    # converts; a part that bound something else would need SQLAlchemy's conversion.
    if any(bind.type.bind_processor(dialect) is not None for bind in compiled.binds.values()):
        raise TypeError(f"a part binds a value {dialect.name} converts: {compiled.string}")
    values = compiled.construct_params()
    if compiled.positional:
        return compiled.string, tuple(values[name] for name in compiled.positiontup or ())
    return compiled.string, dict(values)
