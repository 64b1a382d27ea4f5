"""Every webhook body a test produces is checked against its event type's JSON Schema
(`sluice.events.schemas`) with `jsonschema`, formats included. `tests/conftest.py` watches every outbox
row written during a test (`watch_outbox`) and fails the test at its end if one does not match."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import event

from sluice.events.audit import Action, webhook_body
from sluice.events.schemas import event_schema
from sluice.store.tables import OutboxMessage


@cache
def validator(topic: str) -> Draft202012Validator:
    schema = event_schema(Action(topic))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_errors(body: dict[str, Any]) -> list[str]:
    """Why a webhook body does not match its event type's schema (none: it does)."""
    topic = body.get("type")
    if topic not in {action.value for action in Action}:
        return [f"{topic!r} is no event type"]
    return [
        f"{topic}: {'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
        for error in validator(str(topic)).iter_errors(body)
    ]


@dataclass
class Watched:
    topics: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def watch_outbox() -> Iterator[Watched]:
    """Checks the body of every outbox row inserted meanwhile, in any thread of this process."""
    watched = Watched()

    def check(_mapper: Any, _connection: Any, row: OutboxMessage) -> None:
        body = webhook_body(row)
        errors = schema_errors(body)
        with watched.lock:
            watched.topics.append(row.topic)
            watched.errors += errors

    event.listen(OutboxMessage, "after_insert", check)
    try:
        yield watched
    finally:
        event.remove(OutboxMessage, "after_insert", check)


# The details of a `request.created` event as a real request writes them, for tests that record one
# directly (the watch above checks them against the schema like any other).
REQUEST_CREATED_DETAILS: dict[str, Any] = {
    "requester": "alice@example.com",
    "flow": "oncall-by-manager",
    "resources": ["groups/oncall"],
    "permissions": ["member"],
    "duration": "1h",
    "choice": "alice is in engineers",
}
