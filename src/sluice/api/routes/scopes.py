"""Saved scopes: named resource queries that flows and bundles refer to."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from sluice.api.auth import AdminDep, CallerDep, RuntimeDep
from sluice.api.params import DefinedNamePath
from sluice.api.targeting_schemas import ScopeBody, ScopeList, ScopeView, spec_from_body
from sluice.domain.bundles import ScopeSpec
from sluice.services.targeting import bundles as bundle_service
from sluice.store.db import transaction
from sluice.store.targeting_tables import Scope

router = APIRouter(tags=["targeting"])


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
    spec = spec_from_body(ScopeSpec, {"name": name, **body.model_dump()})
    with transaction(runtime.factory) as session:
        created = bundle_service.put_scope(session, spec, actor=caller.identity.email, now=runtime.clock())
    response.status_code = 201 if created else 200
    return ScopeView(name=spec.name, description=spec.description, query=spec.query)


@router.delete("/scopes/{name}", status_code=204, summary="Delete a scope nothing uses (admin)")
def delete_scope(name: DefinedNamePath, runtime: RuntimeDep, caller: AdminDep) -> None:
    with transaction(runtime.factory) as session:
        bundle_service.delete_scope(session, name, actor=caller.identity.email, now=runtime.clock())
