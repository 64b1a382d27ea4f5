"""History: my past requests, and for admins everyone's (the API's `scope=all` rule), filtered by
status, as a page or a CSV file."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import Query, Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.reading import shown_request
from sluice.domain.states import RequestStatus
from sluice.services.requests import reads
from sluice.store.db import transaction
from sluice.web.guard import ViewerDep
from sluice.web.rendering import render
from sluice.web.routing import portal_router

router = portal_router()

HISTORY_SHOWN = 200
CSV_COLUMNS = ("id", "created_at", "requester", "flow", "status", "duration", "resources", "reason")


def _history(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    scope: reads.RequestScope,
    status: RequestStatus | None,
    limit: int,
) -> dict[str, Any]:
    now = runtime.clock()
    with transaction(runtime.factory) as session:
        page = reads.list_requests(
            session,
            viewer=viewer.identity_in(session),
            is_admin=viewer.reads_everything,
            scope=scope,
            status=status,
            limit=limit,
            offset=0,
            now=now,
        )
        items = [shown_request(session, r, now) for r in page.items]
    return {"items": items, "total": page.total, "scope": scope.value, "status": status, "viewer": viewer}


@router.get("/history")
def history(
    request: Request,
    runtime: RuntimeDep,
    viewer: ViewerDep,
    scope: Annotated[reads.RequestScope, Query()] = reads.RequestScope.MINE,
    status: Annotated[RequestStatus | None, Query()] = None,
) -> Response:
    context = _history(runtime, viewer, scope, status, HISTORY_SHOWN)
    return render(request, "history.html", {**context, "statuses": list(RequestStatus)})


@router.get("/history.csv")
def history_csv(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    scope: Annotated[reads.RequestScope, Query()] = reads.RequestScope.MINE,
    status: Annotated[RequestStatus | None, Query()] = None,
) -> Response:
    context = _history(runtime, viewer, scope, status, 10_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in context["items"]:
        resources = " ".join(f"{g.permission}:{g.resource}" for g in item.grants)
        row = [item.id, item.created_at.isoformat(), item.requester, item.flow, item.status, item.duration]
        writer.writerow([_cell(v) for v in (*row, resources, item.reason)])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": 'attachment; filename="sluice-history.csv"',
            "cache-control": "no-store",
        },
    )


def _cell(value: str) -> str:
    """A value a spreadsheet shows as text, never runs as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
