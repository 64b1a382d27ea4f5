"""Requesting a bundle: all of its current resources (or a chosen subset), as one request."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.connectors.registry import connector_class
from sluice.domain.bundles import resolve_targets
from sluice.domain.errors import InvalidInput, NotFound
from sluice.services.requests.submit import MAX_UNITS_PER_REQUEST, UnitAsked, submit_request
from sluice.services.targeting.bundles import load_bundles, load_scopes
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.target_queries import integration_kinds, target_clause
from sluice.store.tables import AccessRequest, Identity, Resource


def bundle_units(session: Session, name: str) -> list[UnitAsked]:
    """Every (resource, permission) the bundle covers now, in path order."""
    bundles = load_bundles(session)
    bundle = bundles.get(name)
    if bundle is None:
        raise NotFound(f"no bundle {name!r}")
    kinds = integration_kinds(session)
    kind_of = {iid: kind for iid, kind in kinds.values()}
    dialect = session.get_bind().dialect.name
    units: dict[tuple[str, str], UnitAsked] = {}
    for target in resolve_targets(bundle.targets, {}, load_scopes(session)):
        clause = target_clause(target, kinds, dialect)
        if clause is None:
            continue
        limit = MAX_UNITS_PER_REQUEST * 5 + 1
        rows = session.execute(
            select(Resource.path, Resource.type, Resource.integration_id)
            .where(Resource.deleted_at.is_(None), clause)
            .order_by(Resource.path)
            .limit(limit)
        ).all()
        for path, type_, integration_id in rows:
            granted = connector_class(kind_of[integration_id]).permissions.get(type_, ())
            for permission in target.permissions:
                if permission in granted:
                    units.setdefault((path, permission), UnitAsked(path, permission))
    return sorted(units.values(), key=lambda u: (u.resource, u.permission))


def request_bundle(
    session: Session,
    *,
    hub: ConnectorHub,
    requester: Identity,
    bundle: str,
    resources: list[str] | None,
    duration: timedelta,
    reason: str,
    now: datetime,
    flow_name: str | None = None,
) -> AccessRequest:
    units = bundle_units(session, bundle)
    if resources is not None:
        wanted = set(resources)
        unknown = sorted(wanted - {u.resource for u in units})
        if unknown:
            raise InvalidInput(
                f"not in bundle {bundle!r} now: {', '.join(unknown[:10])}", unknown=unknown[:100]
            )
        units = [u for u in units if u.resource in wanted]
    if not units:
        raise InvalidInput(f"bundle {bundle!r} covers no resource now; nothing to request")
    if len(units) > MAX_UNITS_PER_REQUEST:
        raise InvalidInput(
            f"bundle {bundle!r} covers {len(units)} access units, more than one request may hold "
            f"({MAX_UNITS_PER_REQUEST}); choose a subset with `resources`"
        )
    return submit_request(
        session,
        hub=hub,
        requester=requester,
        units=units,
        duration=duration,
        reason=reason,
        now=now,
        flow_name=flow_name,
    )
