"""What the caller holds: their grants, the credentials for one (to the grantee only), revoking one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from sluice.api.auth import CallerDep, RuntimeDep, me
from sluice.api.params import IdPath, Limit, Offset, changing
from sluice.api.schemas import AccessDetails, DecisionBody, GrantPage, GrantView
from sluice.api.views import access_details, grant_view
from sluice.domain.states import is_active
from sluice.services.grants.access import reveal_credentials
from sluice.services.grants.acting import end_grant_as
from sluice.services.requests import reads
from sluice.store.db import transaction

router = APIRouter(prefix="/access", tags=["access"])


@router.get("", response_model=GrantPage, summary="List your grants")
def list_access(
    runtime: RuntimeDep,
    caller: CallerDep,
    include_ended: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> GrantPage:
    with transaction(runtime.factory) as session:
        page = reads.grants_of(
            session, identity=me(session, caller), include_ended=include_ended, limit=limit, offset=offset
        )
        return GrantPage(items=[grant_view(g) for g in page.items], total=page.total)


@router.get("/{grant_id}", response_model=AccessDetails, summary="Show a grant of yours, with credentials")
def show_access(grant_id: IdPath, runtime: RuntimeDep, caller: CallerDep) -> AccessDetails:
    """Only the grantee sees this; for anyone else (admins included) the grant does not exist. The
    connection details are empty while the access is not active; each showing of an active grant's
    credentials is an audit event (`grant.credentials_revealed`), as in the portal."""
    with transaction(runtime.factory) as session:
        viewer = me(session, caller)
        grant = reads.own_grant(session, grant_id=grant_id, viewer=viewer)
        details: dict[str, Any] = {}
        if is_active(grant.desired, grant.actual):
            details = reveal_credentials(
                session, grant_id=grant.id, viewer=viewer, box=runtime.box, now=runtime.clock()
            )
        return access_details(grant, details)


@router.post("/{grant_id}/revoke", response_model=GrantView, summary="End a grant now")
def revoke_access(
    grant_id: IdPath,
    runtime: RuntimeDep,
    caller: CallerDep,
    body: Annotated[DecisionBody | None, Body()] = None,
) -> GrantView:
    now = runtime.clock()
    with changing(runtime) as session:
        grant = end_grant_as(
            session,
            grant_id=grant_id,
            actor=me(session, caller),
            role=caller.role,
            reason=(body or DecisionBody()).reason,
            now=now,
        )
        session.flush()
        return grant_view(grant)
