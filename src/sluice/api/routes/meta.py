"""Health and who the caller is."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.api.auth import CallerDep, RuntimeDep, me
from sluice.api.schemas import Health, Me
from sluice.store.db import transaction
from sluice.store.queries import group_names_of

health_router = APIRouter(tags=["meta"])
router = APIRouter(tags=["meta"])


@health_router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/me", response_model=Me, summary="Who the token belongs to")
def whoami(runtime: RuntimeDep, caller: CallerDep) -> Me:
    with transaction(runtime.factory) as session:
        identity = me(session, caller)
        groups = sorted(group_names_of(session, identity.id, runtime.clock()))
        return Me(
            email=identity.email,
            name=identity.name,
            admin=caller.is_admin,
            role=caller.role,
            groups=groups,
            signed_in_with=caller.method,
            expires_at=caller.expires_at,
            scopes=sorted(caller.scopes),
        )
