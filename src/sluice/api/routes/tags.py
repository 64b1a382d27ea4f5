"""Resource tags injected by other tools, and every tag of a resource with its source. Included before
the inventory routes, whose `GET /resources/{ref}` would otherwise read `…/tags` as part of a path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from sluice.api.auth import AdminDep, CallerDep, RuntimeDep
from sluice.api.params import RefPath, RequiredText, changing
from sluice.api.targeting_schemas import BatchView, ResourceTags, TagBatch, TagsPut, TagView
from sluice.services.targeting.tag_changes import TagChange, apply_tag_changes, resource_for_tags
from sluice.services.targeting.tags import tag_rows_of
from sluice.store.db import transaction

router = APIRouter(tags=["targeting"])


@router.put(
    "/resources/{ref:path}/tags", response_model=ResourceTags, summary="Set a resource's injected tags"
)
def put_tags(ref: RefPath, body: TagsPut, runtime: RuntimeDep, caller: AdminDep) -> ResourceTags:
    """Replaces the tags this API has set on the resource. A discovered value is overridden while an
    injected value for its key is set, and in effect again once that key is left out."""
    with changing(runtime) as session:
        resource = resource_for_tags(session, ref)
        change = TagChange(resource.id, set=dict(body.tags))
        apply_tag_changes(session, [change], actor=caller.identity.email, now=runtime.clock(), replace=True)
        return _tags_view(session, resource.id, resource.path)


@router.get(
    "/resources/{ref:path}/tags",
    response_model=ResourceTags,
    summary="Show a resource's tags and their sources",
)
def show_resource_tags(ref: RefPath, runtime: RuntimeDep, caller: CallerDep) -> ResourceTags:
    """Declared before `GET /resources/{ref}`, which would otherwise read `…/tags` as part of a path."""
    with transaction(runtime.factory) as session:
        row = resource_for_tags(session, ref)
        return _tags_view(session, row.id, row.path)


@router.get("/tags", response_model=ResourceTags, summary="Show a resource's tags and their sources")
def get_tags(
    resource: Annotated[RequiredText, Query(description="A resource path or id")],
    runtime: RuntimeDep,
    caller: CallerDep,
) -> ResourceTags:
    return show_resource_tags(resource, runtime, caller)


@router.post("/tags/batch", response_model=BatchView, summary="Upsert and delete many tags at once (admin)")
def batch_tags(body: TagBatch, runtime: RuntimeDep, caller: AdminDep) -> BatchView:
    """All or nothing: a change naming a missing resource or a bad key fails the whole batch."""
    changes = [TagChange(c.resource, set=dict(c.set), delete=list(c.delete)) for c in body.changes]
    with changing(runtime) as session:
        result = apply_tag_changes(session, changes, actor=caller.identity.email, now=runtime.clock())
        return BatchView(**result.as_dict())


def _tags_view(session: Session, resource_id: str, path: str) -> ResourceTags:
    rows = tag_rows_of(session, resource_id)
    return ResourceTags(
        resource=resource_id,
        path=path,
        tags=[
            TagView(
                key=t.key,
                value=t.value,
                source=t.source,
                discovered_value=t.discovered_value,
                updated_at=t.updated_at,
            )
            for t in rows
        ],
    )
