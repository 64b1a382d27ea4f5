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


async def get_runtime(request: Request) -> Runtime:
    # A coroutine, so FastAPI calls it on the event loop instead of sending it to the thread pool.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The token sent, not yet checked against the store."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("send an API token as `Authorization: Bearer <token>`")
    return credentials.credentials


TokenDep = Annotated[str, Depends(bearer_token)]


def current_caller(runtime: RuntimeDep, token: TokenDep) -> Caller:
    with transaction(runtime.factory) as session:
        return authenticate(session, token)


CallerDep = Annotated[Caller, Depends(current_caller)]


async def admin_caller(caller: CallerDep) -> Caller:
    if not caller.role.administers:
        raise NotAllowed("this needs an admin token")
    return caller


async def operator_caller(caller: CallerDep) -> Caller:
    if not caller.role.operates:
        raise NotAllowed("this needs an operator or admin token")
    return caller


async def auditor_caller(caller: CallerDep) -> Caller:
    if not caller.role.reads_everything:
        raise NotAllowed("this needs an auditor, operator or admin token")
    return caller


AdminDep = Annotated[Caller, Depends(admin_caller)]
OperatorDep = Annotated[Caller, Depends(operator_caller)]
AuditorDep = Annotated[Caller, Depends(auditor_caller)]


def me(session: Session, caller: Caller) -> Identity:
    """The caller's identity row in this session. When the caller was authenticated in this same
    session (see `create_request`), the row is already in it and no query is made."""
    identity = session.get(Identity, caller.identity.id)
    if identity is None or not identity.active:
        raise NotAuthenticated("the identity behind this token no longer exists or is not active")
    return identity
