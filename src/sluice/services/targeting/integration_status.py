"""How each integration is doing: reachable or not (as of its last sync), when it last synced, how many
resources and live grants it has, the last error; and a live check of the connection and the admin
rights, in words a person can act on."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import NotFound, SluiceError
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.store.db import transaction
from sluice.store.grant_states import grant_is_active, grant_is_live, grant_needs_target_work
from sluice.store.tables import Grant, Integration, Resource

log = logging.getLogger("sluice.integrations")

# check() answers that mean the target could not be reached at all (the connectors word them so)
_UNREACHABLE = ("cannot connect", "cannot reach")


@dataclass(frozen=True)
class IntegrationStatus:
    name: str
    kind: str
    owner: str | None
    reachable: bool | None  # as of the last sync; None when it never synced
    last_sync_at: datetime | None
    last_sync_error: str | None
    resource_count: int
    resources_by_type: dict[str, int]
    grants_active: int
    grants_in_progress: int  # live grants whose target work is not done yet (granting or revoking)
    grants_failing: int  # live grants whose last target operation failed
    last_error: str | None
    last_error_at: datetime | None
    disabled: bool = False
    lifecycle: str = "active"
    retired_at: datetime | None = None
    retire_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    integration: str
    kind: str
    reachable: bool
    problems: list[str]
    checked_at: datetime
    seconds: float


def _status(session: Session, integration: Integration) -> IntegrationStatus:
    ours = Grant.integration_id == integration.id
    by_type = dict(
        session.execute(
            select(Resource.type, func.count())
            .where(Resource.integration_id == integration.id, Resource.deleted_at.is_(None))
            .group_by(Resource.type)
        ).all()
    )
    active = session.scalar(select(func.count()).where(ours, grant_is_active()))
    in_progress = session.scalar(
        select(func.count()).where(
            ours,
            grant_is_live(),
            grant_needs_target_work(),
        )
    )
    failing = session.scalar(select(func.count()).where(ours, grant_is_live(), Grant.last_error.is_not(None)))
    last_grant_error = session.execute(
        select(Grant.last_error, Grant.updated_at)
        .where(ours, Grant.last_error.is_not(None))
        .order_by(Grant.updated_at.desc())
        .limit(1)
    ).first()
    last_error, last_error_at = None, None
    if integration.last_sync_error:
        last_error, last_error_at = f"sync: {integration.last_sync_error}", integration.last_sync_at
    if last_grant_error and (last_error_at is None or last_grant_error[1] > last_error_at):
        last_error, last_error_at = f"grant: {last_grant_error[0]}", last_grant_error[1]
    reachable = None if integration.last_sync_at is None else integration.last_sync_error is None
    return IntegrationStatus(
        name=integration.name,
        kind=integration.kind,
        owner=integration.owner,
        reachable=reachable,
        last_sync_at=integration.last_sync_at,
        last_sync_error=integration.last_sync_error,
        resource_count=sum(by_type.values()),
        resources_by_type={str(k): int(v) for k, v in sorted(by_type.items())},
        grants_active=int(active or 0),
        grants_in_progress=int(in_progress or 0),
        grants_failing=int(failing or 0),
        last_error=last_error,
        last_error_at=last_error_at,
        disabled=integration.disabled,
        lifecycle=integration.lifecycle,
        retired_at=integration.retired_at,
        retire_error=integration.retire_error,
    )


def integration_statuses(session: Session) -> list[IntegrationStatus]:
    return [_status(session, i) for i in session.scalars(select(Integration).order_by(Integration.name))]


def integration_status(session: Session, name: str) -> IntegrationStatus:
    integration = session.scalar(select(Integration).where(Integration.name == name))
    if integration is None:
        raise NotFound(f"no integration {name!r}")
    return _status(session, integration)


def check_integration(
    factory: sessionmaker[Session], hub: ConnectorHub, name: str, *, now: datetime
) -> CheckResult:
    """Asks the connector to test its connection and admin rights, outside any transaction (a target
    may be slow; every connector call has its own timeout)."""
    with transaction(factory) as session:
        integration = session.scalar(select(Integration).where(Integration.name == name))
        if integration is None:
            raise NotFound(f"no integration {name!r}")
        kind = integration.kind
        connector = hub.for_integration(integration)
    started = time.monotonic()
    try:
        problems = list(connector.check())
    except SluiceError as exc:
        problems = [f"cannot connect: {exc.detail}"]
    except Exception as exc:  # a connector bug must show as a problem, not a crash of the caller
        log.exception("check of %s failed", name)
        problems = [f"the connector failed unexpectedly ({type(exc).__name__})"]
    reachable = not any(p.startswith(_UNREACHABLE) for p in problems)
    return CheckResult(name, kind, reachable, problems, now, round(time.monotonic() - started, 3))
