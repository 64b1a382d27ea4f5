"""The audit log, newest first (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from sluice.api.auth import AuditorDep, RuntimeDep
from sluice.api.params import MAX_ID, FilterText, Limit
from sluice.api.schemas import AuditPage
from sluice.api.views import audit_view
from sluice.services.audit import reads as audit_reads
from sluice.store.db import transaction

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Read the audit log (admin)")
def list_audit(
    runtime: RuntimeDep,
    caller: AuditorDep,
    limit: Limit = 100,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Page on: events older than this id")
    ] = None,
    subject: Annotated[FilterText | None, Query(description="Only events about this subject id")] = None,
    action: Annotated[
        FilterText | None, Query(description="Only events of this action, e.g. grant.revoked")
    ] = None,
) -> AuditPage:
    with transaction(runtime.factory) as session:
        events = audit_reads.audit_events(
            session, limit=limit, before_id=before_id, subject=subject, action=action
        )
        return AuditPage(items=[audit_view(e) for e in events])
