"""Bearer tokens: `Authorization: Bearer <token>`, checked against the stored hashes. The runtime is
read from the app's state, never from a global."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from sluice.domain.errors import NotAllowed, NotAuthenticated
from sluice.runtime import Runtime
from sluice.services.tokens import Caller, authenticate
from sluice.store.db import transaction
from sluice.store.tables import Identity

_bearer = HTTPBearer(auto_error=False, description="An API token from `sluice token create`")


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def current_caller(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("send an API token as `Authorization: Bearer <token>`")
    with transaction(runtime.factory) as session:
        return authenticate(session, credentials.credentials)


CallerDep = Annotated[Caller, Depends(current_caller)]


def admin_caller(caller: CallerDep) -> Caller:
    if not caller.is_admin:
        raise NotAllowed("this needs an admin token")
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]


def me(session: Session, caller: Caller) -> Identity:
    """The caller's identity row in this session (the one from authentication belongs to another)."""
    identity = session.get(Identity, caller.identity.id)
    if identity is None or not identity.active:
        raise NotAuthenticated("the identity behind this token no longer exists or is not active")
    return identity
