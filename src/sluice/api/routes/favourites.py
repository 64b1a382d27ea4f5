"""Favourites: your saved requests, and asking for one again (a new request, checked now)."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.api.auth import CallerDep, RuntimeDep, me
from sluice.api.params import IdPath, body_duration, changing
from sluice.api.reading import shown_request
from sluice.api.schemas import FavouriteCreate, FavouriteList, FavouriteView, RequestView
from sluice.api.views import favourite_view
from sluice.domain.errors import InvalidInput
from sluice.services.requests import favourites
from sluice.services.requests.submit import UnitAsked
from sluice.store.db import transaction

router = APIRouter(prefix="/favourites", tags=["favourites"])


@router.get("", response_model=FavouriteList, summary="List your favourites")
def list_favourites(runtime: RuntimeDep, caller: CallerDep) -> FavouriteList:
    with transaction(runtime.factory) as session:
        return FavouriteList(
            items=[favourite_view(f) for f in favourites.favourites_of(session, me(session, caller))]
        )


@router.post("", status_code=201, response_model=FavouriteView, summary="Save a favourite")
def save_favourite(body: FavouriteCreate, runtime: RuntimeDep, caller: CallerDep) -> FavouriteView:
    if body.resources and body.permission is None:
        raise InvalidInput(
            "name the `permission` of the resources",
            errors=[{"location": "body.permission", "message": "missing"}],
        )
    if body.bundle is not None and body.permission is not None:
        raise InvalidInput(
            "a favourite names resources and permissions or a bundle, not both",
            errors=[{"location": "body.permission", "message": "a bundle names its own permissions"}],
        )
    duration = body_duration(body.duration)
    asked = favourites.FavouriteAsked(
        name=body.name,
        units=[UnitAsked(resource=path, permission=body.permission or "") for path in body.resources],
        bundle=body.bundle,
        duration=duration,
        reason=body.reason,
    )
    with changing(runtime) as session:
        saved = favourites.save_favourite(
            session, owner=me(session, caller), asked=asked, now=runtime.clock()
        )
        return favourite_view(saved)


@router.delete("/{favourite_id}", status_code=204, summary="Remove a favourite")
def delete_favourite(favourite_id: IdPath, runtime: RuntimeDep, caller: CallerDep) -> None:
    with changing(runtime) as session:
        favourites.delete_favourite(session, owner=me(session, caller), favourite_id=favourite_id)


@router.post(
    "/{favourite_id}/requests",
    status_code=201,
    response_model=RequestView,
    summary="Ask for a favourite again",
)
def ask_again(favourite_id: IdPath, runtime: RuntimeDep, caller: CallerDep) -> RequestView:
    now = runtime.clock()
    with changing(runtime) as session:
        request = favourites.ask_again(
            session, hub=runtime.hub, owner=me(session, caller), favourite_id=favourite_id, now=now
        )
        return shown_request(session, request, now)
