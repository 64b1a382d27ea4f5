"""SCIM callers: `Authorization: Bearer <SCIM token>`; the token names the directory source it pushes
for. API tokens are not accepted here, and SCIM tokens are not accepted anywhere else."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from sluice.api.auth import RuntimeDep
from sluice.domain.errors import NotAuthenticated
from sluice.services.directory.scim_tokens import scim_source_for
from sluice.store.db import transaction


def scim_source(request: Request, runtime: RuntimeDep) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("send a SCIM token as `Authorization: Bearer <token>`")
    with transaction(runtime.factory) as session:
        return scim_source_for(session, token.strip())


SourceDep = Annotated[str, Depends(scim_source)]
