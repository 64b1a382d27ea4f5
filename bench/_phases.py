"""Where one submit's time goes, measured in the bench only: the request route's steps are wrapped in
timers and every SQL statement is counted and timed (SQLAlchemy cursor events), grouped by what it
does. Nothing here is in a production code path; it patches the route module for the duration."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

import sluice.api.routes.requests as route

# What a statement does, from the table it names first.
_KINDS = [
    ("auth (token, identity)", re.compile(r"\b(api_tokens|identities)\b")),
    ("audit chain, events, outbox", re.compile(r"\b(audit_chain|audit_events|outbox)\b")),
    ("request and grant rows", re.compile(r"^INSERT INTO (requests|grants)\b")),
    ("policy reads (flows, groups, resources, tags, held grants)", re.compile(r".")),
]


def _kind(statement: str) -> str:
    if statement.startswith("NOTIFY") or "pg_notify" in statement:
        return "worker notice"
    for name, pattern in _KINDS:
        if pattern.search(statement):
            return name
    return "other"


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.sql_seconds: dict[str, float] = defaultdict(float)
        self.statements: Counter[str] = Counter()
        self.submits = 0

    def report(self) -> list[str]:
        n = max(1, self.submits)
        total = self.seconds["HTTP request, end to end"]
        lines = [f"per submit, over {n} submits (ms; statements):"]
        steps = [
            ("HTTP request, end to end", total),
            ("  HTTP, validation, answer (outside the route's work)", total - self.seconds["route work"]),
            ("  route work (one transaction)", self.seconds["route work"]),
            ("    auth (token -> caller)", self.seconds["auth"]),
            ("    submit_request (policy, rows, audit, flush)", self.seconds["submit"]),
            ("    the answer's view", self.seconds["view"]),
            (
                "    commit, notice and the rest",
                self.seconds["route work"]
                - self.seconds["auth"]
                - self.seconds["submit"]
                - self.seconds["view"],
            ),
        ]
        lines += [f"  {name:<60} {value * 1000 / n:7.2f}" for name, value in steps]
        lines.append(f"  {'SQL statements by kind (round-trip time inside the above)':<60}")
        for kind, count in sorted(self.statements.items()):
            lines.append(f"    {kind:<58} {self.sql_seconds[kind] * 1000 / n:7.2f}  {count / n:.1f}")
        lines.append(
            f"    {'all statements (COMMIT not included)':<58} "
            f"{sum(self.sql_seconds.values()) * 1000 / n:7.2f}  {sum(self.statements.values()) / n:.1f}"
        )
        return lines


def _timed(phases: Phases, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases.seconds[name] += time.perf_counter() - started

    return wrapper


@contextmanager
def measured(engine: Engine) -> Iterator[Phases]:
    phases = Phases()
    originals = {
        name: getattr(route, name) for name in ("_submit", "caller_for", "submit_request", "shown_request")
    }
    route._submit = _timed(phases, "route work", originals["_submit"])  # type: ignore[assignment]
    route.caller_for = _timed(phases, "auth", originals["caller_for"])  # type: ignore[assignment]
    route.submit_request = _timed(phases, "submit", originals["submit_request"])  # type: ignore[assignment]
    route.shown_request = _timed(phases, "view", originals["shown_request"])  # type: ignore[assignment]

    def before(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        context._bench_started = time.perf_counter()

    def after(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        kind = _kind(statement.lstrip())
        phases.statements[kind] += 1
        phases.sql_seconds[kind] += time.perf_counter() - context._bench_started

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield phases
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
        for name, fn in originals.items():
            setattr(route, name, fn)
