"""API tokens: one's own (list, create, revoke), and everyone's for admins. A new token's secret is
in the creating answer only, which no cache may keep."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from sluice.api.auth import CallerDep, RuntimeDep, me
from sluice.api.params import IdPath, Limit, Offset
from sluice.api.token_schemas import TokenCreate, TokenCreated, TokenPage, TokenView, token_view
from sluice.domain.text import Email
from sluice.services.directory import token_lifecycle
from sluice.services.directory.token_lifecycle import NewToken, TokenAsked
from sluice.store.db import transaction

router = APIRouter(prefix="/tokens", tags=["tokens"])

NO_STORE = "no-store"


def created(new: NewToken, response: Response, now: datetime) -> TokenCreated:
    """The answer that carries a new token's secret: never kept by a cache."""
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Pragma"] = "no-cache"
    return TokenCreated(**token_view(new.row, now).model_dump(), token=new.secret)


def asked_of(body: TokenCreate) -> TokenAsked:
    return TokenAsked(name=body.name, scopes=frozenset(body.scopes), expires=body.expires)


@router.get("", response_model=TokenPage, summary="List API tokens (your own; admins: anyone's)")
def list_tokens(
    runtime: RuntimeDep,
    caller: CallerDep,
    owner: Annotated[Email | None, Query(description="This person's tokens (admin)")] = None,
    everyone: Annotated[bool, Query(alias="all", description="Everyone's tokens (admin)")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> TokenPage:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        page = token_lifecycle.list_tokens(
            session, caller=caller, owner=owner, everyone=everyone, limit=limit, offset=offset
        )
        return TokenPage(items=[token_view(row, now) for row in page.items], total=page.total)


@router.post("", status_code=201, response_model=TokenCreated, summary="Create an API token for yourself")
def create_token(
    body: TokenCreate, response: Response, runtime: RuntimeDep, caller: CallerDep
) -> TokenCreated:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        owner = me(session, caller)
        new = token_lifecycle.create_own_token(
            session,
            caller=caller,
            owner=owner,
            asked=asked_of(body),
            lifetimes=runtime.settings.token_lifetimes,
            now=now,
        )
        return created(new, response, now)


@router.delete("/{token_id}", response_model=TokenView, summary="Revoke an API token (yours; admins: any)")
def revoke_token(token_id: IdPath, runtime: RuntimeDep, caller: CallerDep) -> TokenView:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        row = token_lifecycle.revoke_token(session, caller=caller, token_id=token_id, now=now)
        return token_view(row, now)
