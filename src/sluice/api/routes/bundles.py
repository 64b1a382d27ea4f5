"""Bundles: named sets of targets an admin keeps, and requesting one as a whole."""

from __future__ import annotations

from fastapi import APIRouter, Response

from sluice.api.auth import AdminDep, CallerDep, RuntimeDep, me
from sluice.api.params import DefinedNamePath, changing
from sluice.api.reading import shown_request
from sluice.api.schemas import RequestView
from sluice.api.targeting_schemas import BundleBody, BundleList, BundleRequestBody, BundleView, spec_from_body
from sluice.domain.bundles import BundleSpec
from sluice.domain.durations import parse_duration
from sluice.services.requests.bundle_requests import request_bundle
from sluice.services.targeting import bundles as bundle_service
from sluice.store.db import transaction

router = APIRouter(tags=["targeting"])


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
    spec = spec_from_body(BundleSpec, {"name": name, **body.model_dump(exclude_none=True)})
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
