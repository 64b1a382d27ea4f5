"""Dynamic targeting: tags injected by other tools, bundles, saved scopes, what a person may request
and why (not)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.api.auth import AdminDep, CallerDep, RuntimeDep, me
from sluice.api.params import DefinedNamePath, FilterText, Limit, Offset, RefPath, RequiredText, changing
from sluice.api.reading import shown_request
from sluice.api.schemas import RequestView
from sluice.api.targeting_schemas import (
    BatchView,
    BundleBody,
    BundleList,
    BundleRequestBody,
    BundleView,
    ExplanationView,
    FlowVerdictView,
    OptionView,
    RequestableBundleView,
    RequestableItem,
    RequestablePageView,
    ResourceTags,
    ScopeBody,
    ScopeList,
    ScopeView,
    TagBatch,
    TagsPut,
    TagView,
)
from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput, NotAllowed
from sluice.services.requests.bundle_requests import request_bundle
from sluice.services.requests.explain import explain
from sluice.services.targeting import bundles as bundle_service
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.services.targeting.tags import TagChange, apply_tag_changes, resource_for_tags, tag_rows_of
from sluice.store.db import transaction
from sluice.store.targeting_tables import Scope

router = APIRouter(tags=["targeting"])
SpecT = TypeVar("SpecT", BundleSpec, ScopeSpec)


def _spec(model: type[SpecT], data: dict[str, object]) -> SpecT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput(errors[0]["message"] if errors else "invalid", errors=errors) from exc


# Tags -------------------------------------------------------------------------------------------------


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


# Bundles ----------------------------------------------------------------------------------------------


@router.get("/bundles", response_model=BundleList, summary="List bundles")
def list_bundles(runtime: RuntimeDep, caller: CallerDep) -> BundleList:
    with transaction(runtime.factory) as session:
        found = bundle_service.load_bundles(session)
        return BundleList(items=[_bundle_view(found[n]) for n in sorted(found)])


@router.get("/bundles/{name}", response_model=BundleView, summary="Show a bundle")
def show_bundle(name: DefinedNamePath, runtime: RuntimeDep, caller: CallerDep) -> BundleView:
    with transaction(runtime.factory) as session:
        return _bundle_view(BundleSpec.model_validate(bundle_service.bundle_view(session, name)))


@router.put("/bundles/{name}", response_model=BundleView, summary="Create or replace a bundle (admin)")
def put_bundle(
    name: DefinedNamePath, body: BundleBody, runtime: RuntimeDep, caller: AdminDep, response: Response
) -> BundleView:
    spec = _spec(BundleSpec, {"name": name, "description": body.description, "targets": body.plain_targets()})
    with transaction(runtime.factory) as session:
        created = bundle_service.put_bundle(session, spec, actor=caller.identity.email, now=runtime.clock())
    response.status_code = 201 if created else 200
    return _bundle_view(spec)


@router.delete("/bundles/{name}", status_code=204, summary="Delete a bundle no flow uses (admin)")
def delete_bundle(name: DefinedNamePath, runtime: RuntimeDep, caller: AdminDep) -> None:
    with transaction(runtime.factory) as session:
        bundle_service.delete_bundle(session, name, actor=caller.identity.email, now=runtime.clock())


@router.post(
    "/bundles/{name}/requests", status_code=201, response_model=RequestView, summary="Request a bundle"
)
def create_bundle_request(
    name: DefinedNamePath, body: BundleRequestBody, runtime: RuntimeDep, caller: CallerDep
) -> RequestView:
    """Requests every resource the bundle covers now, or the subset named in `resources`."""
    duration = parse_duration(body.duration)
    now = runtime.clock()
    with changing(runtime) as session:
        request = request_bundle(
            session,
            hub=runtime.hub,
            requester=me(session, caller),
            bundle=name,
            resources=body.resources,
            duration=duration,
            reason=body.reason,
            now=now,
            flow_name=body.flow,
        )
        session.flush()
        return shown_request(session, request, now)


def _bundle_view(spec: BundleSpec) -> BundleView:
    return BundleView(
        name=spec.name,
        description=spec.description,
        targets=[t.model_dump(mode="json", exclude_none=True, exclude_defaults=True) for t in spec.targets],
    )


# Scopes -----------------------------------------------------------------------------------------------


@router.get("/scopes", response_model=ScopeList, summary="List saved scopes")
def list_scopes(runtime: RuntimeDep, caller: CallerDep) -> ScopeList:
    with transaction(runtime.factory) as session:
        rows = session.scalars(select(Scope).order_by(Scope.name))
        return ScopeList(
            items=[ScopeView(name=r.name, description=r.description, query=r.query) for r in rows]
        )


@router.get("/scopes/{name}", response_model=ScopeView, summary="Show a saved scope")
def show_scope(name: DefinedNamePath, runtime: RuntimeDep, caller: CallerDep) -> ScopeView:
    with transaction(runtime.factory) as session:
        row = bundle_service.scope_row(session, name)
        return ScopeView(name=row.name, description=row.description, query=row.query)


@router.put("/scopes/{name}", response_model=ScopeView, summary="Create or replace a saved scope (admin)")
def put_scope(
    name: DefinedNamePath, body: ScopeBody, runtime: RuntimeDep, caller: AdminDep, response: Response
) -> ScopeView:
    """A query that cannot be read answers 422 with the column of the problem."""
    spec = _spec(ScopeSpec, {"name": name, **body.model_dump()})
    with transaction(runtime.factory) as session:
        created = bundle_service.put_scope(session, spec, actor=caller.identity.email, now=runtime.clock())
    response.status_code = 201 if created else 200
    return ScopeView(name=spec.name, description=spec.description, query=spec.query)


@router.delete("/scopes/{name}", status_code=204, summary="Delete a scope nothing uses (admin)")
def delete_scope(name: DefinedNamePath, runtime: RuntimeDep, caller: AdminDep) -> None:
    with transaction(runtime.factory) as session:
        bundle_service.delete_scope(session, name, actor=caller.identity.email, now=runtime.clock())


# What can I request, and why (not) --------------------------------------------------------------------


@router.get("/requestable", response_model=RequestablePageView, summary="What you may request")
def list_requestable(
    runtime: RuntimeDep,
    caller: CallerDep,
    integration: FilterText | None = None,
    resource_type: Annotated[FilterText | None, Query(alias="type")] = None,
    path_prefix: FilterText | None = None,
    tag: Annotated[
        FilterText | None, Query(description="key=value, key, key != value, key in [a, b]")
    ] = None,
    q: FilterText | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RequestablePageView:
    where = RequestableFilter(integration, resource_type, path_prefix, tag, q)
    with transaction(runtime.factory) as session:
        page = requestable(
            session,
            identity=me(session, caller),
            where=where,
            limit=limit,
            offset=offset,
            now=runtime.clock(),
        )
        return RequestablePageView(
            items=[
                RequestableItem(
                    id=i.resource.id,
                    integration=i.resource.integration,
                    type=i.resource.type,
                    name=i.resource.name,
                    path=i.resource.path,
                    tags=dict(i.resource.tags),
                    options=[OptionView(**o.__dict__) for o in i.options],
                )
                for i in page.items
            ],
            next_offset=page.next_offset,
            bundles=[RequestableBundleView(**b.__dict__) for b in page.bundles],
        )


@router.get("/explain", response_model=ExplanationView, summary="Why may (or may not) someone request this")
def explain_access(
    runtime: RuntimeDep,
    caller: CallerDep,
    resource: Annotated[RequiredText, Query(description="A resource path or id")],
    permission: Annotated[RequiredText, Query()],
    identity: Annotated[FilterText | None, Query(description="An email; yourself when left out")] = None,
) -> ExplanationView:
    """Anyone may explain their own access; explaining someone else's needs an admin token."""
    if (
        identity
        and identity.strip().lower() != caller.identity.email.lower()
        and not caller.role.reads_everything
    ):
        raise NotAllowed("explaining another person's access needs an admin token")
    email = identity or caller.identity.email
    with transaction(runtime.factory) as session:
        result = explain(session, email=email, resource=resource, permission=permission, now=runtime.clock())
        return ExplanationView(
            identity=result.identity,
            resource=result.resource.path,
            resource_type=result.resource.type,
            tags=dict(result.resource.tags),
            permission=result.permission,
            allowed=result.allowed,
            summary=result.summary,
            flow=result.chosen_flow,
            flows=[FlowVerdictView(**v.__dict__) for v in result.flows],
        )
