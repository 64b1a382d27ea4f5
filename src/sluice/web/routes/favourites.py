"""Favourites in the portal: save what the review form holds under a name, ask for a favourite again
in one click (a new request through the same service as the API's, checked now), remove one. Each
person reaches only their own; another's is absent, as in the API."""

from __future__ import annotations

from fastapi import Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.params import IdPath, changing
from sluice.domain.durations import parse_duration
from sluice.services.requests import favourites
from sluice.web.guard import ViewerDep, form_fields
from sluice.web.rendering import go_to
from sluice.web.routes.asking import parse_units
from sluice.web.routing import portal_router

router = portal_router()


@router.post("/favourites")
async def save(request: Request, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    fields = await form_fields(request)
    values = dict(fields)
    bundle = values.get("bundle") or None
    units = [] if bundle else parse_units([value for name, value in fields if name == "unit"])
    asked = favourites.FavouriteAsked(
        name=values.get("favourite", ""),
        units=units,
        bundle=bundle,
        duration=parse_duration(values.get("duration", "")),
        reason=values.get("reason", ""),
    )
    with changing(runtime) as session:
        favourites.save_favourite(
            session, owner=viewer.identity_in(session), asked=asked, now=runtime.clock()
        )
    return go_to(request, "/request")


@router.post("/favourites/{favourite_id}/ask")
def ask_again(request: Request, favourite_id: IdPath, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    with changing(runtime) as session:
        asked = favourites.ask_again(
            session,
            hub=runtime.hub,
            owner=viewer.identity_in(session),
            favourite_id=favourite_id,
            now=runtime.clock(),
        )
        request_id = asked.id
    return go_to(request, f"/requests/{request_id}")


@router.post("/favourites/{favourite_id}/delete")
def remove(request: Request, favourite_id: IdPath, runtime: RuntimeDep, viewer: ViewerDep) -> Response:
    with changing(runtime) as session:
        favourites.delete_favourite(session, owner=viewer.identity_in(session), favourite_id=favourite_id)
    return go_to(request, "/request")
