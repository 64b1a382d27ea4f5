"""The directory: identities and groups (with temporary memberships that grants made)."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.api.auth import CallerDep, RuntimeDep
from sluice.api.params import EmailPath, Limit, NamePath, Offset
from sluice.api.reading import shown_groups, shown_identities
from sluice.api.schemas import GroupPage, GroupView, IdentityPage, IdentityView
from sluice.services.directory import reads as directory_reads
from sluice.services.directory.tokens import Caller
from sluice.store.db import transaction

router = APIRouter(tags=["directory"])


def _private_to(caller: Caller) -> str | None:
    return None if caller.role.reads_everything else caller.identity.id


@router.get("/identities", response_model=IdentityPage, summary="List identities")
def list_identities(
    runtime: RuntimeDep, caller: CallerDep, limit: Limit = 100, offset: Offset = 0
) -> IdentityPage:
    with transaction(runtime.factory) as session:
        page = directory_reads.list_identities(session, limit=limit, offset=offset)
        views = shown_identities(session, page.items, runtime.clock(), private_to=_private_to(caller))
        return IdentityPage(items=views, total=page.total)


@router.get("/identities/{email}", response_model=IdentityView, summary="Show one identity")
def show_identity(email: EmailPath, runtime: RuntimeDep, caller: CallerDep) -> IdentityView:
    with transaction(runtime.factory) as session:
        found = [directory_reads.identity(session, email)]
        return shown_identities(session, found, runtime.clock(), private_to=_private_to(caller))[0]


@router.get("/groups", response_model=GroupPage, summary="List groups and their members")
def list_groups(runtime: RuntimeDep, caller: CallerDep, limit: Limit = 100, offset: Offset = 0) -> GroupPage:
    with transaction(runtime.factory) as session:
        page = directory_reads.list_groups(session, limit=limit, offset=offset)
        return GroupPage(items=shown_groups(session, page.items, runtime.clock()), total=page.total)


@router.get("/groups/{name:path}", response_model=GroupView, summary="Show one group and its members")
def show_group(name: NamePath, runtime: RuntimeDep, caller: CallerDep) -> GroupView:
    with transaction(runtime.factory) as session:
        return shown_groups(session, [directory_reads.group(session, name)], runtime.clock())[0]
