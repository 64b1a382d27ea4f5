"""Query parameters and the unit of work that the routes share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Path, Query, Request
from sqlalchemy.orm import Session

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
IdPath = Annotated[str, Path(description="An id"), Text(max_length=64, min_length=1)]
RefPath = Annotated[str, Path(description="A resource path or id"), Text(max_length=1000, min_length=1)]
# Query filters: the same rules, so every string the API reads is bounded.
FilterText = Annotated[str, Text(max_length=1000)]
RequiredText = Annotated[str, Text(max_length=1000, min_length=1)]


async def refuse_nul(request: Request) -> None:
    """A NUL character in a path or query value is never meaningful, and PostgreSQL refuses to
    compare text with one: answer 422 here rather than 500 there. A coroutine: it does no I/O, so it runs
    on the event loop rather than costing every request a trip to the thread pool."""
    if "\x00" in request.url.path or any("\x00" in k + v for k, v in request.query_params.multi_items()):
        raise InvalidInput("the URL contains a NUL character (%00); remove it")


@contextmanager
def changing(runtime: Runtime) -> Iterator[Session]:
    """One transaction for a change to requests or grants. Workers are told inside it (on PostgreSQL the
    notice is delivered at commit) and once more after the commit, so a worker in this process that
    woke too early, before the change was visible, runs again."""
    with transaction(runtime.factory) as session:
        yield session
        runtime.notify_work(session)
    runtime.wake.set()
