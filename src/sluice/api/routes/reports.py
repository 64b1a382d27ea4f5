"""Reports for access reviews and auditors (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from sluice.api.auth import AuditorDep, RuntimeDep
from sluice.api.params import FilterText, Limit, Moment, Offset
from sluice.domain.errors import InvalidInput
from sluice.domain.text import Email, Token
from sluice.services.audit.reports import AccessFilter, AccessRow, access_report
from sluice.store.db import transaction

router = APIRouter(prefix="/reports", tags=["reports"])


class AccessReportPage(BaseModel):
    items: list[AccessRow]
    total: int


@router.get("/access", response_model=AccessReportPage, summary="Who had which access, when, and why (admin)")
def access(
    runtime: RuntimeDep,
    caller: AuditorDep,
    person: Annotated[Email | None, Query(description="Only this person (email)")] = None,
    resource: Annotated[FilterText | None, Query(description="A resource path or prefix")] = None,
    integration: Annotated[Token | None, Query()] = None,
    flow: Annotated[Token | None, Query()] = None,
    since: Annotated[Moment | None, Query(description="Access live from here …")] = None,
    until: Annotated[Moment | None, Query(description="… to this one")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AccessReportPage:
    if since and until and since > until:
        raise InvalidInput("since is after until")
    spec = AccessFilter(
        person=person, resource=resource, integration=integration, flow=flow, since=since, until=until
    )
    with transaction(runtime.factory) as session:
        rows, total = access_report(session, spec, limit=limit, offset=offset)
    return AccessReportPage(items=rows, total=total)
