"""Read-only questions about the inventory: resources with filters and pages, parents, integrations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.errors import InvalidInput, NotFound
from sluice.domain.selectors import parse_tag_rule
from sluice.services.pages import Page, page_of
from sluice.store.selector_sql import compile_criteria
from sluice.store.tables import Integration, Resource


@dataclass(frozen=True)
class ResourceFilter:
    integration: str | None = None
    type: str | None = None
    path_prefix: str | None = None
    q: str | None = None
    tag: str | None = None  # a tag rule: key=value, key, key != value, key in [a, b]
    include_deleted: bool = False


def list_resources(session: Session, *, where: ResourceFilter, limit: int, offset: int) -> Page[Resource]:
    query = select(Resource).order_by(Resource.path)
    if where.integration:
        query = query.join(Integration, Integration.id == Resource.integration_id).where(
            Integration.name == where.integration
        )
    if where.type:
        query = query.where(Resource.type == where.type)
    if where.path_prefix:
        query = query.where(Resource.path.startswith(where.path_prefix, autoescape=True))
    if where.q:
        query = query.where(
            or_(
                Resource.name.icontains(where.q, autoescape=True),
                Resource.path.icontains(where.q, autoescape=True),
            )
        )
    if where.tag:
        try:
            rule = parse_tag_rule(where.tag)
        except ValueError as exc:
            raise InvalidInput(f"tag filter: {exc}") from exc
        query = query.where(compile_criteria(rule, session.get_bind().dialect.name))
    if not where.include_deleted:
        query = query.where(Resource.deleted_at.is_(None))
    return page_of(session, query, limit, offset)


def resource_by_ref(session: Session, ref: str) -> Resource:
    """A resource by its id or by its path."""
    row = session.get(Resource, ref) or session.scalar(select(Resource).where(Resource.path == ref))
    if row is None:
        raise NotFound(f"no resource {ref!r}")
    return row


def parent_paths(session: Session, resources: Sequence[Resource]) -> dict[str, str]:
    ids = {r.parent_id for r in resources if r.parent_id}
    if not ids:
        return {}
    return dict(session.execute(select(Resource.id, Resource.path).where(Resource.id.in_(ids))).all())


def list_integrations(session: Session) -> list[Integration]:
    return list(session.scalars(select(Integration).order_by(Integration.name)))
