"""Admin pages, for whoever the API lets read everything (auditors, operators, admins): the
break-glass requests awaiting review first, grants by state with the stuck revokes first, integrations
and their status, the flows as written with an explain box ("may X get Y, and who approves?"), and the
audit log with filters."""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import Query, Request, Response

from sluice.api.auth import RuntimeDep
from sluice.api.reading import shown_request
from sluice.api.views import grant_view
from sluice.domain.states import GrantState
from sluice.domain.text import Text
from sluice.services.audit import reads as audit_reads
from sluice.services.requests import break_glass, reads
from sluice.services.requests.explain import explain
from sluice.services.targeting.integration_status import integration_statuses
from sluice.store.db import transaction
from sluice.web.guard import AuditorViewer
from sluice.web.rendering import render
from sluice.web.routing import portal_router

router = portal_router()

GRANTS_SHOWN = 200
EVENTS_SHOWN = 200
Filter = Annotated[str, Text(max_length=1000), Query()]


@router.get("/admin")
def admin_home(
    request: Request,
    runtime: RuntimeDep,
    viewer: AuditorViewer,
    who: Filter = "",
    resource: Filter = "",
    permission: Filter = "",
) -> Response:
    now = runtime.clock()
    context: dict[str, Any] = {"viewer": viewer, "who": who, "resource": resource, "permission": permission}
    with transaction(runtime.factory) as session:
        context["unreviewed"] = [
            shown_request(session, r, now)
            for r in break_glass.unreviewed_requests(session, limit=GRANTS_SHOWN)
        ]
        stuck = reads.list_grants(
            session, where=reads.GrantFilter(state=GrantState.REVOKE_FAILED), limit=GRANTS_SHOWN, offset=0
        ).items
        live = reads.list_grants(session, where=reads.GrantFilter(), limit=GRANTS_SHOWN, offset=0).items
        stuck_ids = {g.id for g in stuck}
        context["grants"] = [grant_view(g) for g in [*stuck, *(g for g in live if g.id not in stuck_ids)]]
        context["integrations"] = integration_statuses(session)
        context["flows"] = [
            (spec["name"], yaml.safe_dump(spec, sort_keys=False)) for spec in reads.flow_specs(session)
        ]
        context["explained"] = (
            explain(session, email=who, resource=resource, permission=permission, now=now)
            if who and resource and permission
            else None
        )
    return render(request, "admin.html", context)


@router.get("/admin/audit")
def audit_log(
    request: Request,
    runtime: RuntimeDep,
    viewer: AuditorViewer,
    subject: Filter = "",
    action: Filter = "",
) -> Response:
    with transaction(runtime.factory) as session:
        events = audit_reads.audit_events(
            session, limit=EVENTS_SHOWN, before_id=None, subject=subject or None, action=action or None
        )
        session.expunge_all()
    return render(
        request, "audit.html", {"viewer": viewer, "events": events, "subject": subject, "action": action}
    )
