"""Response shapes that need more than the rows in hand: each reads what its view needs (approvers,
parents, groups, members) through the read services, then maps with the pure views in `views.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from sluice.api.schemas import GroupView, IdentityView, RequestView, ResourceView
from sluice.api.views import group_views, identity_views, request_view, resource_views
from sluice.services.directory import reads as directory_reads
from sluice.services.requests import reads
from sluice.services.targeting import reads as targeting_reads
from sluice.services.targeting.tags import tags_of
from sluice.store.tables import AccessRequest, Group, Identity, Resource


def shown_request(session: Session, request: AccessRequest, now: datetime) -> RequestView:
    return request_view(request, approvers=reads.request_approvers(session, request, now))


def shown_requests(session: Session, requests: Sequence[AccessRequest], now: datetime) -> list[RequestView]:
    """A page of requests, with the approvers of all of them read together."""
    approvers = reads.requests_approvers(session, list(requests), now)
    return [request_view(r, approvers=approvers.get(r.id, [])) for r in requests]


def shown_resources(session: Session, resources: Sequence[Resource]) -> list[ResourceView]:
    """With each resource's effective tags, read for the whole page at once."""
    return resource_views(
        resources,
        parents=targeting_reads.parent_paths(session, resources),
        tags=tags_of(session, [r.id for r in resources]),
    )


def shown_identities(
    session: Session, identities: Sequence[Identity], now: datetime, *, private_to: str | None = None
) -> list[IdentityView]:
    groups = directory_reads.group_names_by_identity(session, identities, now)
    return identity_views(identities, groups=groups, private_to=private_to)


def shown_groups(session: Session, groups: Sequence[Group], now: datetime) -> list[GroupView]:
    return group_views(groups, members=directory_reads.members_by_group(session, groups, now))
