"""Bundles and saved scopes in the store: reading, resolving flows against them, and changing them
through the API (the config file changes them through `apply_config`). Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.bundles import BundleSpec, ScopeSpec, bundle_names, resolve_flow
from sluice.domain.errors import Conflict, InvalidInput, NotFound
from sluice.domain.flows import FlowSpec, Target
from sluice.domain.policy import RequesterIndex, is_self_serve
from sluice.events.audit import Action, record
from sluice.store.queries import all_flows
from sluice.store.tables import AccessFlow, Integration
from sluice.store.targeting_tables import Bundle, Scope
from sluice.store.types import new_id


@dataclass(frozen=True)
class FlowSet:
    """Every flow of one stored state, parsed and resolved, with what is worked out from the flows
    alone: built once per state (the caches below) and shared by every caller that reads that state."""

    flows: tuple[FlowSpec, ...]
    self_serve: RequesterIndex  # the flows that are on and self-serve, by whom they let request
    # the flows as stored that name bundles, each with the names of those bundles that exist
    naming_bundles: tuple[tuple[FlowSpec, tuple[str, ...]], ...] = ()

    @classmethod
    def of(
        cls, flows: tuple[FlowSpec, ...], naming_bundles: tuple[tuple[FlowSpec, tuple[str, ...]], ...] = ()
    ) -> FlowSet:
        self_serve = RequesterIndex([f for f in flows if is_self_serve(f)])
        return cls(flows, self_serve, naming_bundles)


@dataclass(frozen=True)
class _Parsed:
    flows: FlowSet
    needs_resolution: bool  # some flow names a bundle or scope
    naming_bundles: tuple[tuple[FlowSpec, tuple[str, ...]], ...]  # the flows that do, with the names


@lru_cache(maxsize=16)
def _parse_flows(texts: tuple[str, ...]) -> _Parsed:
    """Flows from their stored texts. Cached by the texts themselves, so a change to any flow is seen
    at once; parsed flows keep their compiled selectors."""
    flows = tuple(FlowSpec.model_validate_json(text) for text in texts)
    naming = tuple((f, tuple(names)) for f in flows if (names := bundle_names(f)))
    return _Parsed(FlowSet.of(flows), any(needs_resolution(f) for f in flows), naming)


@lru_cache(maxsize=16)
def _resolve_all(
    flow_texts: tuple[str, ...],
    bundle_texts: tuple[tuple[str, str], ...],
    scopes: tuple[tuple[str, str], ...],
) -> FlowSet:
    """`bundle_texts`: each bundle's name and stored text."""
    bundles = {b.name: b for b in (BundleSpec.model_validate_json(t) for _, t in bundle_texts)}
    scope_map = dict(scopes)
    parsed = _parse_flows(flow_texts)
    existing = {name for name, _ in bundle_texts}
    naming = tuple((f, tuple(n for n in names if n in existing)) for f, names in parsed.naming_bundles)
    return FlowSet.of(tuple(resolve_flow(f, bundles, scope_map) for f in parsed.flows.flows), naming)


def needs_resolution(flow: FlowSpec) -> bool:
    return any(t.bundle or t.scope or t.select.scope_names() for t in flow.targets)


def load_bundles(session: Session) -> dict[str, BundleSpec]:
    return {row.name: BundleSpec.model_validate(row.spec) for row in session.scalars(select(Bundle))}


def load_scopes(session: Session) -> dict[str, str]:
    return {name: query for name, query in session.execute(select(Scope.name, Scope.query))}


def resolve_flows(session: Session, flows: list[FlowSpec]) -> list[FlowSpec]:
    """The flows with bundle and scope references replaced by what they name now. The bundle and
    scope tables are read only when some flow refers to them."""
    if not any(needs_resolution(f) for f in flows):
        return flows
    bundles, scopes = load_bundles(session), load_scopes(session)
    return [resolve_flow(f, bundles, scopes) for f in flows]


# Built once: a statement built per call is walked again for its cache key, and these run per page.
_FLOW_TEXTS = select(cast(AccessFlow.spec, Text)).order_by(AccessFlow.name)
_BUNDLE_TEXTS = select(Bundle.name, cast(Bundle.spec, Text)).order_by(Bundle.name)
_SCOPE_QUERIES = select(Scope.name, Scope.query).order_by(Scope.name)


def flow_texts(session: Session) -> tuple[str, ...]:
    """The stored texts of every flow, by name: what the parsed flows are cached by."""
    return tuple(session.scalars(_FLOW_TEXTS))


def current_flows(session: Session, texts: tuple[str, ...] | None = None) -> list[FlowSpec]:
    """Every flow, parsed and resolved; cached by the stored texts of flows, bundles and scopes.
    `texts`: the flows' texts, when the caller has just read them (`flow_texts`)."""
    return list(current_flow_set(session, texts).flows)


def current_flow_set(session: Session, texts: tuple[str, ...] | None = None) -> FlowSet:
    """`current_flows` with what is worked out from them, shared while the flows stay the same."""
    texts = flow_texts(session) if texts is None else texts
    parsed = _parse_flows(texts)
    if not parsed.needs_resolution:
        return parsed.flows
    bundle_texts = tuple((name, text) for name, text in session.execute(_BUNDLE_TEXTS))
    scopes = tuple((name, query) for name, query in session.execute(_SCOPE_QUERIES))
    return _resolve_all(texts, bundle_texts, scopes)


# Changing them ------------------------------------------------------------------------------------


def check_targets(session: Session, targets: list[Target], scopes: set[str] | None = None) -> None:
    """Each target names an integration that exists, a type its connector knows and permissions
    that type has; each scope it names exists."""
    kinds = {name: kind for name, kind in session.execute(select(Integration.name, Integration.kind))}
    known_scopes = scopes if scopes is not None else set(load_scopes(session))
    for number, target in enumerate(targets):
        where = f"targets.{number}"
        for name in ({target.scope} if target.scope else set()) | target.select.scope_names():
            if name not in known_scopes:
                raise InvalidInput(f"{where}: no scope named {name!r}")
        if target.integration is None:
            continue
        kind = kinds.get(target.integration)
        if kind is None:
            raise InvalidInput(f"{where}: no integration named {target.integration!r}")
        permissions = connector_class(kind).permissions
        if target.type not in permissions:
            raise InvalidInput(
                f"{where}: {kind} integrations have no resource type {target.type!r}; "
                f"types: {', '.join(sorted(permissions))}"
            )
        wrong = [p for p in target.permissions if p not in permissions[target.type or ""]]
        if wrong:
            raise InvalidInput(
                f"{where}: {', '.join(wrong)} cannot be granted on {target.type}; "
                f"permissions: {', '.join(permissions[target.type or ''])}"
            )


def _referring_flows(session: Session, *, bundle: str | None = None, scope: str | None = None) -> list[str]:
    names = []
    for row in all_flows(session):
        try:
            flow = FlowSpec.model_validate(row.spec)
        except ValidationError:
            continue
        for target in flow.targets:
            if (bundle and target.bundle == bundle) or (
                scope and (target.scope == scope or scope in target.select.scope_names())
            ):
                names.append(flow.name)
                break
    return names


def put_bundle(session: Session, spec: BundleSpec, *, actor: str, now: datetime, source: str = "api") -> bool:
    """Create or replace a bundle; True when it was created."""
    check_targets(session, spec.targets)
    row = session.scalar(select(Bundle).where(Bundle.name == spec.name))
    data = spec.model_dump(mode="json", exclude_none=True)
    created = row is None
    if row is None:
        row = Bundle(
            id=new_id("bdl"), name=spec.name, spec=data, source=source, created_at=now, updated_at=now
        )
        session.add(row)
    else:
        row.spec, row.source, row.updated_at = data, source, now
    _audit(
        session, Action.OBJECT_CREATED if created else Action.OBJECT_CHANGED, "bundle", spec.name, actor, now
    )
    return created


def delete_bundle(session: Session, name: str, *, actor: str, now: datetime) -> None:
    row = session.scalar(select(Bundle).where(Bundle.name == name))
    if row is None:
        raise NotFound(f"no bundle {name!r}")
    users = _referring_flows(session, bundle=name)
    if users:
        raise Conflict(f"bundle {name!r} is used by flow(s) {', '.join(users)}; change them first")
    session.delete(row)
    _audit(session, Action.OBJECT_REMOVED, "bundle", name, actor, now)


def put_scope(session: Session, spec: ScopeSpec, *, actor: str, now: datetime, source: str = "api") -> bool:
    row = session.scalar(select(Scope).where(Scope.name == spec.name))
    created = row is None
    if row is None:
        row = Scope(
            id=new_id("scp"),
            name=spec.name,
            description=spec.description,
            query=spec.query,
            source=source,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    else:
        row.description, row.query, row.source, row.updated_at = spec.description, spec.query, source, now
    _audit(
        session, Action.OBJECT_CREATED if created else Action.OBJECT_CHANGED, "scope", spec.name, actor, now
    )
    return created


def delete_scope(session: Session, name: str, *, actor: str, now: datetime) -> None:
    row = session.scalar(select(Scope).where(Scope.name == name))
    if row is None:
        raise NotFound(f"no scope {name!r}")
    users = _referring_flows(session, scope=name)
    for bundle in load_bundles(session).values():
        if any(t.scope == name or name in t.select.scope_names() for t in bundle.targets):
            users.append(f"bundle {bundle.name}")
    if users:
        raise Conflict(f"scope {name!r} is used by {', '.join(users)}; change them first")
    session.delete(row)
    _audit(session, Action.OBJECT_REMOVED, "scope", name, actor, now)


def _audit(session: Session, action: Action, kind: str, name: str, actor: str, now: datetime) -> None:
    record(
        session, now=now, actor=actor, action=action, subject_type=kind, subject_id=name, kind=kind, name=name
    )


def bundle_view(session: Session, name: str) -> dict[str, Any]:
    row = session.scalar(select(Bundle).where(Bundle.name == name))
    if row is None:
        raise NotFound(f"no bundle {name!r}")
    return dict(row.spec)


def scope_row(session: Session, name: str) -> Scope:
    row = session.scalar(select(Scope).where(Scope.name == name))
    if row is None:
        raise NotFound(f"no scope {name!r}")
    return row
