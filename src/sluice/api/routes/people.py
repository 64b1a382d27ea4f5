"""Directory updates (admin) and on-call questions. Every directory change is queued for
re-evaluation and wakes the worker, the same path an IdP sync takes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from sluice.api.auth import AdminDep, CallerDep, RuntimeDep, me
from sluice.api.params import EmailPath, IdPath, Moment, NamePath, changing
from sluice.api.reading import shown_groups, shown_identities
from sluice.api.schemas import DurationText, GrantView, GroupView, IdentityView, ReasonText
from sluice.api.views import grant_view
from sluice.domain.durations import parse_duration
from sluice.domain.errors import NotFound
from sluice.domain.shifts import ScheduleSpec
from sluice.domain.text import Description, Email, Name, PersonName, Token, Value, text_keys
from sluice.services.directory.changes import (
    MAX_ATTRIBUTES,
    MAX_GROUPS_PER_IDENTITY,
    MAX_MEMBERS,
    set_group,
    set_identity,
)
from sluice.services.grants.acting import extend_grant_as
from sluice.store.db import transaction
from sluice.store.people_queries import on_call
from sluice.store.people_tables import Schedule

router = APIRouter(tags=["directory"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Attributes = Annotated[dict[Token, Value], Field(max_length=MAX_ATTRIBUTES, json_schema_extra=text_keys)]
GroupNames = Annotated[list[Name], Field(max_length=MAX_GROUPS_PER_IDENTITY)]
Members = Annotated[list[Email], Field(max_length=MAX_MEMBERS)]


class IdentityPut(_Body):
    name: PersonName = ""
    active: bool = True
    manager: Email | None = None
    attributes: Attributes = Field(default_factory=dict)
    groups: GroupNames = Field(default_factory=list)


class IdentityPatch(_Body):
    name: PersonName | None = None
    active: bool | None = None
    manager: Email | None = None
    attributes: Attributes | None = None
    groups: GroupNames | None = None


class GroupPut(_Body):
    description: Description | None = None
    members: Members = Field(default_factory=list)


class GroupPatch(_Body):
    description: Description | None = None
    add: Members = Field(default_factory=list)
    remove: Members = Field(default_factory=list)


class OnCall(BaseModel):
    schedule: str
    at: datetime
    on_call: list[str]


class ScheduleList(BaseModel):
    items: list[dict[str, Any]]


def _identity(runtime: Any, caller: Any, email: str, fields: dict[str, Any], replace: bool) -> IdentityView:
    now = runtime.clock()
    with changing(runtime) as session:
        identity = set_identity(
            session, email=email, fields=fields, replace=replace, actor=caller.identity.email, now=now
        )
        session.flush()
        return shown_identities(session, [identity], now)[0]


@router.put("/identities/{email}", response_model=IdentityView, summary="Create or replace an identity")
def put_identity(email: EmailPath, body: IdentityPut, runtime: RuntimeDep, caller: AdminDep) -> IdentityView:
    return _identity(runtime, caller, email, body.model_dump(), replace=True)


@router.patch("/identities/{email}", response_model=IdentityView, summary="Change some fields of an identity")
def patch_identity(
    email: EmailPath, body: IdentityPatch, runtime: RuntimeDep, caller: AdminDep
) -> IdentityView:
    # null means "leave it" for every field but the manager, where it means "none".
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "manager"
    }
    return _identity(runtime, caller, email, changes, replace=False)


def _group(runtime: Any, caller: Any, name: str, **kwargs: Any) -> GroupView:
    now = runtime.clock()
    with changing(runtime) as session:
        group = set_group(session, name=name, actor=caller.identity.email, now=now, **kwargs)
        session.flush()
        return shown_groups(session, [group], now)[0]


@router.put("/groups/{name:path}", response_model=GroupView, summary="Create a group or replace its members")
def put_group(name: NamePath, body: GroupPut, runtime: RuntimeDep, caller: AdminDep) -> GroupView:
    return _group(
        runtime, caller, name, description=body.description, members=body.members, add=[], remove=[]
    )


@router.patch("/groups/{name:path}", response_model=GroupView, summary="Add or remove group members")
def patch_group(name: NamePath, body: GroupPatch, runtime: RuntimeDep, caller: AdminDep) -> GroupView:
    return _group(
        runtime, caller, name, description=body.description, members=None, add=body.add, remove=body.remove
    )


@router.get("/schedules", response_model=ScheduleList, summary="List on-call schedules", tags=["on-call"])
def list_schedules(runtime: RuntimeDep, caller: CallerDep) -> ScheduleList:
    with transaction(runtime.factory) as session:
        rows = session.query(Schedule).order_by(Schedule.name).all()
        return ScheduleList(items=[ScheduleSpec.model_validate(r.spec).model_dump(mode="json") for r in rows])


@router.get(
    "/schedules/{name}/on-call",
    response_model=OnCall,
    summary="Who is on call now, or at a time",
    tags=["on-call"],
)
def who_is_on_call(
    name: NamePath,
    runtime: RuntimeDep,
    caller: CallerDep,
    at: Annotated[Moment | None, Query(description="An ISO 8601 time with a zone; default now")] = None,
) -> OnCall:
    moment = at or runtime.clock()
    with transaction(runtime.factory) as session:
        found = on_call(session, name, moment)
    if found is None:
        raise NotFound(f"no schedule {name!r}")
    return OnCall(schedule=name, at=moment, on_call=found)


class ExtendBody(_Body):
    by: DurationText = Field(description="How much longer, written like '30m' or '1h'")
    reason: ReasonText = ""


@router.post(
    "/access/{grant_id}/extend", response_model=GrantView, summary="Make a grant last longer", tags=["access"]
)
def extend_access(grant_id: IdPath, body: ExtendBody, runtime: RuntimeDep, caller: CallerDep) -> GrantView:
    by = parse_duration(body.by)
    now = runtime.clock()
    with changing(runtime) as session:
        grant = extend_grant_as(
            session,
            grant_id=grant_id,
            actor=me(session, caller),
            role=caller.role,
            by=by,
            reason=body.reason,
            now=now,
        )
        session.flush()
        return grant_view(grant)
