"""Rows to response shapes. Each view names what it copies, so nothing else (credentials, connector
config) can slip out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from sluice.api.schemas import (
    AccessDetails,
    ApprovalView,
    AuditEventView,
    FavouriteUnit,
    FavouriteView,
    GrantView,
    GroupView,
    IdentityView,
    IntegrationView,
    MemberView,
    RequestView,
    ResourceView,
)
from sluice.domain.connection import client_command, client_env, connection_of
from sluice.domain.durations import format_duration
from sluice.domain.states import GrantState, grant_state, request_state, review_state
from sluice.store.favourite_tables import Favourite
from sluice.store.tables import (
    AccessRequest,
    AuditEvent,
    Grant,
    Group,
    Identity,
    Integration,
    Resource,
)


def _state(grant: Grant) -> GrantState:
    return grant_state(grant.desired, grant.actual, revoke_failed=grant.revoke_failed_at is not None)


def grant_view(grant: Grant) -> GrantView:
    return GrantView(
        id=grant.id,
        request_id=grant.request_id,
        grantee=grant.identity.email,
        integration=grant.integration.name,
        resource=grant.resource_path,
        resource_type=grant.resource_type,
        permission=grant.permission,
        state=_state(grant).value,
        desired=grant.desired,
        actual=grant.actual,
        principal=grant.principal,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        granted_at=grant.granted_at,
        revoked_at=grant.revoked_at,
        end_reason=grant.end_reason,
        last_error=grant.last_error,
        attempts=grant.attempts,
    )


def access_details(grant: Grant, details: dict[str, Any]) -> AccessDetails:
    port = details.get("port")
    return AccessDetails(
        **grant_view(grant).model_dump(),
        host=_text(details.get("host")),
        port=int(port) if isinstance(port, int | str) and str(port).isdigit() else None,
        database=_text(details.get("database")),
        username=_text(details.get("username")),
        password=_text(details.get("password")),
        private_key=_text(details.get("private_key")),
        **_client_hints(grant.integration.kind, details),
    )


def _client_hints(kind: str, details: dict[str, Any]) -> dict[str, Any]:
    if not details:
        return {}
    connection = connection_of(kind, details)
    password = _text(details.get("password"))
    return {
        "connection": connection,
        "client": client_command(connection),
        "env": client_env(connection, password),
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def request_view(request: AccessRequest, *, approvers: list[str]) -> RequestView:
    grants = list(request.grants)
    return RequestView(
        id=request.id,
        requester=request.requester.email,
        on_behalf_of=next((g.identity.email for g in grants if g.identity_id != request.requester_id), None),
        starts_at=request.starts_at,
        flow=request.flow_name,
        reason=request.reason,
        duration=format_duration(timedelta(seconds=request.duration_seconds)),
        duration_seconds=request.duration_seconds,
        status=request.status,
        state=request_state(request.status, [_state(g) for g in grants]).value,
        created_at=request.created_at,
        decided_at=request.decided_at,
        decided_by=request.decided_by,
        decision_reason=request.decision_reason,
        pending_until=request.pending_until,
        approvers=approvers,
        approvals=[
            ApprovalView(approver=a.approver.email, decision=a.decision, reason=a.reason, at=a.created_at)
            for a in request.approvals
        ],
        grants=[grant_view(g) for g in grants],
        break_glass=request.break_glass,
        incident=request.incident,
        review=review_state(request.break_glass, request.reviewed_at, request.review_outcome),
        reviewed_by=request.reviewed_by,
        reviewed_at=request.reviewed_at,
        review_reason=request.review_reason,
    )


def resource_views(
    resources: Sequence[Resource], *, parents: dict[str, str], tags: Mapping[str, dict[str, str]]
) -> list[ResourceView]:
    return [
        ResourceView(
            id=r.id,
            integration=r.integration.name,
            type=r.type,
            name=r.name,
            path=r.path,
            parent=parents.get(r.parent_id) if r.parent_id else None,
            deleted_at=r.deleted_at,
            tags=dict(sorted(tags.get(r.id, {}).items())),
        )
        for r in resources
    ]


def identity_views(
    identities: Sequence[Identity], *, groups: dict[str, list[str]], private_to: str | None = None
) -> list[IdentityView]:
    """With `private_to` (the id of a viewer who may not read everything), other people's attributes
    (department, employee number, cost centre…) are left out: names, managers and groups are what a
    person needs to see who approves what."""
    return [
        IdentityView(
            email=i.email,
            name=i.name,
            active=i.active,
            manager=i.manager_email,
            groups=groups.get(i.id, []),
            attributes=dict(i.attributes or {}) if private_to in (None, i.id) else {},
        )
        for i in identities
    ]


def group_views(groups: Sequence[Group], *, members: dict[str, list[Any]]) -> list[GroupView]:
    return [
        GroupView(
            name=g.name,
            description=g.description,
            source=g.source,
            members=[
                MemberView(email=m.email, source=m.source, expires_at=m.expires_at)
                for m in members.get(g.id, [])
            ],
        )
        for g in groups
    ]


def integration_view(integration: Integration, *, with_errors: bool = True) -> IntegrationView:
    """Errors from a target name its hosts and accounts: only those who read everything see them."""
    return IntegrationView(
        name=integration.name,
        kind=integration.kind,
        owner=integration.owner,
        sync_interval_seconds=integration.sync_interval_seconds,
        last_sync_at=integration.last_sync_at,
        last_sync_error=integration.last_sync_error if with_errors else None,
        resource_count=integration.resource_count,
    )


def audit_view(event: AuditEvent) -> AuditEventView:
    return AuditEventView(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        reason=event.reason,
        details=dict(event.details or {}),
    )


def favourite_view(favourite: Favourite) -> FavouriteView:
    return FavouriteView(
        id=favourite.id,
        name=favourite.name,
        bundle=favourite.bundle,
        units=[FavouriteUnit(resource=path, permission=permission) for permission, path in favourite.units],
        duration=format_duration(timedelta(seconds=favourite.duration_seconds)),
        reason=favourite.reason,
        created_at=favourite.created_at,
    )
