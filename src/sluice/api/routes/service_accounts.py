"""Service accounts (admin): non-human identities for automation, and their tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response

from sluice.api.auth import AdminDep, RuntimeDep, me
from sluice.api.params import Limit, NamePath, Offset
from sluice.api.routes.tokens import asked_of, created
from sluice.api.token_schemas import (
    ServiceAccountCreate,
    ServiceAccountPage,
    ServiceAccountView,
    TokenCreate,
    TokenCreated,
    service_account_view,
)
from sluice.services.directory import service_accounts, token_lifecycle
from sluice.store.db import transaction

router = APIRouter(prefix="/service-accounts", tags=["service accounts"])


@router.get("", response_model=ServiceAccountPage, summary="List service accounts (admin)")
def list_accounts(
    runtime: RuntimeDep, caller: AdminDep, limit: Limit = 100, offset: Offset = 0
) -> ServiceAccountPage:
    with transaction(runtime.factory) as session:
        page = service_accounts.list_service_accounts(session, limit=limit, offset=offset)
        return ServiceAccountPage(items=[service_account_view(a) for a in page.items], total=page.total)


@router.post(
    "", status_code=201, response_model=ServiceAccountView, summary="Create a service account (admin)"
)
def create_account(body: ServiceAccountCreate, runtime: RuntimeDep, caller: AdminDep) -> ServiceAccountView:
    with transaction(runtime.factory) as session:
        account = service_accounts.create_service_account(
            session,
            name=body.name,
            description=body.description,
            role=body.role,
            owner=me(session, caller),
            now=runtime.clock(),
        )
        return service_account_view(account)


@router.post(
    "/{name}/disable",
    response_model=ServiceAccountView,
    summary="Disable a service account and its tokens (admin)",
)
def disable_account(name: NamePath, runtime: RuntimeDep, caller: AdminDep) -> ServiceAccountView:
    with transaction(runtime.factory) as session:
        account = service_accounts.disable_service_account(
            session, name=name, actor=caller.identity.email, now=runtime.clock()
        )
        runtime.notify_work(session)
        return service_account_view(account)


@router.post(
    "/{name}/tokens",
    status_code=201,
    response_model=TokenCreated,
    summary="Create a token for a service account (admin)",
)
def create_account_token(
    name: NamePath, body: TokenCreate, response: Response, runtime: RuntimeDep, caller: AdminDep
) -> TokenCreated:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        new = token_lifecycle.create_service_account_token(
            session,
            name=name,
            asked=asked_of(body),
            lifetimes=runtime.settings.token_lifetimes,
            actor=caller.identity.email,
            now=now,
        )
        return created(new, response, now)
