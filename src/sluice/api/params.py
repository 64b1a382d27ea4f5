"""Query parameters and the unit of work that the routes share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import Path, Query, Request, params
from fastapi.dependencies.utils import get_flat_params
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BeforeValidator
from sqlalchemy.orm import Session

from sluice.domain import bundles
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.text import EMAIL_PATTERN, MAX_EMAIL, MAX_NAME, Text
from sluice.runtime.wiring import Runtime
from sluice.store.db import transaction

MAX_PAGE = 500
MAX_OFFSET = 2**31 - 1  # beyond any real list, and within what every store can compare
MAX_ID = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"At most this many items (1..{MAX_PAGE})")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many items")]

# Path segments are text a caller sends like any other: bounded, without NUL or lone surrogates.
EmailPath = Annotated[
    str,
    Path(description="An email address"),
    Text(max_length=MAX_EMAIL, min_length=1, pattern=EMAIL_PATTERN, pattern_words="an email address"),
]
NamePath = Annotated[str, Path(description="A name"), Text(max_length=MAX_NAME, min_length=1)]
# Bundles and scopes are named by the rule their specs apply (domain/bundles.py), so a name the path
# admits is one a body can be stored under.
DefinedNamePath = Annotated[
    str,
    Path(description="A bundle or scope name"),
    Text(
        max_length=bundles.MAX_NAME,
        min_length=1,
        pattern=bundles.NAME.pattern,
        pattern_words=bundles.NAME_WORDS,
    ),
]
IdPath = Annotated[str, Path(description="An id"), Text(max_length=64, min_length=1)]
RefPath = Annotated[str, Path(description="A resource path or id"), Text(max_length=1000, min_length=1)]
# A moment in a query string, as the schema's `date-time` says: an RFC 3339 time with its zone. Pydantic
# would also read a bare number as seconds since 1970, which the schema does not admit; it is refused.
_NUMBER = re.compile(r"[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")


def _not_a_number(value: object) -> object:
    if isinstance(value, str | int | float) and _NUMBER.fullmatch(str(value).strip()):
        raise ValueError("must be a date and time with a zone, like 2026-11-01T00:00:00Z, not a number")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
# Query filters: the same rules, so every string the API reads is bounded.
FilterText = Annotated[str, Text(max_length=1000)]
RequiredText = Annotated[str, Text(max_length=1000, min_length=1)]


async def refuse_nul(request: Request) -> None:
    """A NUL character in a path or query value is never meaningful, and PostgreSQL refuses to
    compare text with one: answer 422 here rather than 500 there. A coroutine: it does no I/O, so it runs
    on the event loop rather than costing every request a trip to the thread pool."""
    if "\x00" in request.url.path or any("\x00" in k + v for k, v in request.query_params.multi_items()):
        raise InvalidInput("the URL contains a NUL character (%00); remove it")


def _query_names(route: APIRoute) -> set[str]:
    """The query parameters an operation declares, its dependencies' included."""
    dependant_params = get_flat_params(route.dependant)
    return {field.alias for field in dependant_params if isinstance(field.field_info, params.Query)}


async def refuse_unknown_query(request: Request) -> None:
    """A query parameter the operation does not declare is refused with a 422 naming it, rather than
    ignored: a misspelt filter (`?stat=active`) would otherwise answer as if no filter were given."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        names = ", ".join(repr(name) for name in unknown[:5])
        allowed = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"unknown query parameter(s) {names}; this operation takes: {allowed}",
            errors=[
                {"location": f"query.{name}", "message": "is not a parameter of this operation"}
                for name in unknown[:20]
            ],
        )


def body_duration(text: str) -> timedelta:
    """A body's `duration`, or a problem that points at the field."""
    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, errors=[{"location": "body.duration", "message": exc.detail}]) from exc


@contextmanager
def changing(runtime: Runtime) -> Iterator[Session]:
    """One transaction for a change to requests or grants. Workers are told inside it (on PostgreSQL the
    notice is delivered at commit) and once more after the commit, so a worker in this process that
    woke too early, before the change was visible, runs again."""
    with transaction(runtime.factory) as session:
        yield session
        runtime.notify_work(session)
    runtime.wake.set()
