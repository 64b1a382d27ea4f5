"""Favourites: a person saves a request (its resources and permissions, or a bundle; a duration; a
reason) under a name, lists their own, removes one, and asks for it again in one step. Each person
sees only their own: another's favourite is absent (NotFound), as an unknown id is. Asking again is a
new request through the same services as any other, so everything is checked again now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.text import storable_text
from sluice.services.requests.bundle_requests import request_bundle
from sluice.services.requests.submit import (
    MAX_REASON_LENGTH,
    MAX_UNITS_PER_REQUEST,
    UnitAsked,
    submit_request,
)
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.favourite_tables import Favourite
from sluice.store.tables import AccessRequest, Identity, Resource
from sluice.store.types import new_id

MAX_FAVOURITES = 50  # per person
MAX_NAME_LENGTH = 120


@dataclass(frozen=True)
class FavouriteAsked:
    """What to save: `units` or a `bundle` (with no units: the whole bundle as it is then)."""

    name: str
    units: list[UnitAsked]
    bundle: str | None
    duration: timedelta
    reason: str


def _storable(what: str, value: str) -> None:
    try:
        storable_text(value)
    except ValueError as exc:
        raise InvalidInput(f"the favourite's {what} {exc}") from None


def _checked(asked: FavouriteAsked) -> None:
    """The rules every way in shares (the API's body validates the same again, before this)."""
    for what, value in (
        ("name", asked.name),
        ("reason", asked.reason),
        ("bundle", asked.bundle or ""),
        *(("resource", u.resource) for u in asked.units),
        *(("permission", u.permission) for u in asked.units),
    ):
        _storable(what, value)
    if not asked.name.strip() or len(asked.name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"a favourite's name holds 1 to {MAX_NAME_LENGTH} characters")
    if asked.bundle is None and not asked.units:
        raise InvalidInput("a favourite names resources and permissions, or a bundle")
    if asked.bundle is not None and asked.units:
        raise InvalidInput("a favourite names resources and permissions or a bundle, not both")
    if len(asked.units) > MAX_UNITS_PER_REQUEST:
        raise InvalidInput(f"a favourite may hold at most {MAX_UNITS_PER_REQUEST} access units")
    if len(set(asked.units)) != len(asked.units):
        raise InvalidInput("the same resource and permission are named twice")
    if asked.duration <= timedelta(0):
        raise InvalidInput("the duration must be longer than zero")
    if len(asked.reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"the reason may be at most {MAX_REASON_LENGTH} characters")


def save_favourite(session: Session, *, owner: Identity, asked: FavouriteAsked, now: datetime) -> Favourite:
    _checked(asked)
    held = session.scalar(
        select(func.count()).select_from(Favourite).where(Favourite.identity_id == owner.id)
    )
    if (held or 0) >= MAX_FAVOURITES:
        raise Conflict(f"you keep {MAX_FAVOURITES} favourites already; remove one first")
    taken = session.scalar(
        select(Favourite.id).where(Favourite.identity_id == owner.id, Favourite.name == asked.name.strip())
    )
    if taken is not None:
        raise Conflict(f"you have a favourite named {asked.name.strip()!r} already")
    favourite = Favourite(
        id=new_id("fav"),
        identity_id=owner.id,
        name=asked.name.strip(),
        bundle=asked.bundle,
        units=[[u.permission, u.resource] for u in asked.units],
        duration_seconds=int(asked.duration.total_seconds()),
        reason=asked.reason,
        created_at=now,
    )
    session.add(favourite)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # the same name saved at the same moment by another call
        raise Conflict(f"you have a favourite named {asked.name.strip()!r} already") from None
    return favourite


def favourites_of(session: Session, owner: Identity) -> list[Favourite]:
    return list(
        session.scalars(select(Favourite).where(Favourite.identity_id == owner.id).order_by(Favourite.name))
    )


def own_favourite(session: Session, owner: Identity, favourite_id: str) -> Favourite:
    favourite = session.get(Favourite, favourite_id)
    if favourite is None or favourite.identity_id != owner.id:
        raise NotFound(f"you have no favourite {favourite_id!r}")
    return favourite


def delete_favourite(session: Session, *, owner: Identity, favourite_id: str) -> None:
    session.delete(own_favourite(session, owner, favourite_id))
    session.flush()


def units_of(favourite: Favourite) -> list[UnitAsked]:
    return [UnitAsked(resource=path, permission=permission) for permission, path in favourite.units]


def _vanished(session: Session, favourite: Favourite) -> list[str]:
    """The paths the favourite names that no longer exist in the inventory."""
    paths = [path for _, path in favourite.units]
    live = set(
        session.scalars(select(Resource.path).where(Resource.path.in_(paths), Resource.deleted_at.is_(None)))
    )
    return [path for path in paths if path not in live]


def ask_again(
    session: Session, *, hub: ConnectorHub, owner: Identity, favourite_id: str, now: datetime
) -> AccessRequest:
    """A new request for what the favourite names, checked now as any request is. What changed since
    it was saved (a resource or bundle gone, a flow that no longer allows it) is said in the favourite's
    name, so the person knows which one to mend."""
    favourite = own_favourite(session, owner, favourite_id)
    named = f"favourite {favourite.name!r}"
    duration = timedelta(seconds=favourite.duration_seconds)
    gone = _vanished(session, favourite)
    if gone:
        verb = "exists" if len(gone) == 1 else "exist"
        raise Conflict(
            f"{named} names {', '.join(gone[:5])}, which no longer {verb}; remove the favourite and "
            "save a new one from what you may request now",
            vanished=gone[:100],
        )
    try:
        if favourite.bundle is not None:
            return request_bundle(
                session,
                hub=hub,
                requester=owner,
                bundle=favourite.bundle,
                resources=None,
                duration=duration,
                reason=favourite.reason,
                now=now,
            )
        return submit_request(
            session,
            hub=hub,
            requester=owner,
            units=units_of(favourite),
            duration=duration,
            reason=favourite.reason,
            now=now,
        )
    except NotFound as exc:  # the bundle is gone
        raise Conflict(f"{named} can no longer be asked for: {exc.detail}", **exc.extra) from exc
    except NotAllowed as exc:
        raise NotAllowed(f"{named} may no longer be asked for: {exc.detail}", **exc.extra) from exc
    except InvalidInput as exc:
        raise InvalidInput(f"{named} cannot be asked for as saved: {exc.detail}", **exc.extra) from exc
