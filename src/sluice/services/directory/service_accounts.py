"""Service accounts: non-human identities for automation, created and disabled by admins. Each is an
identity (so requests, grants and audit treat it like anyone) with a `service_accounts` row that says
what it is; it never signs in and never approves, and acts only through tokens an admin creates.
Disabling one deactivates its identity: every token stops at once and its access is re-evaluated."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict, InvalidInput, NotFound
from sluice.domain.people import SERVICE_ACCOUNT_DOMAIN
from sluice.domain.roles import Role
from sluice.events.audit import Action, record
from sluice.services.pages import Page, page_of
from sluice.store.auth_tables import ServiceAccount
from sluice.store.people_queries import record_people_change
from sluice.store.queries import identity_by_email
from sluice.store.tables import Identity
from sluice.store.types import new_id

SERVICE_ACCOUNT_SOURCE = "service-account"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NAME = re.compile(NAME_PATTERN)


def service_account_email(name: str) -> str:
    return f"{name}@{SERVICE_ACCOUNT_DOMAIN}"


def is_service_account(session: Session, identity_id: str) -> bool:
    query = select(ServiceAccount.identity_id).where(ServiceAccount.identity_id == identity_id)
    return session.scalar(query) is not None


def create_service_account(
    session: Session, *, name: str, description: str, role: Role, owner: Identity, now: datetime
) -> ServiceAccount:
    if not _NAME.match(name):
        raise InvalidInput(
            f"service account name {name!r} must be 1 to 63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    email = service_account_email(name)
    if identity_by_email(session, email) is not None:
        raise Conflict(f"a service account {name!r} already exists")
    identity = Identity(
        id=new_id("idn"),
        email=email,
        name=description or name,
        active=True,
        manager_email=owner.email,
        attributes={},
        source=SERVICE_ACCOUNT_SOURCE,
        created_at=now,
        updated_at=now,
    )
    session.add(identity)
    session.flush()
    account = ServiceAccount(
        identity_id=identity.id,
        identity=identity,
        name=name,
        owner=owner.email,
        role=role.value,
        description=description,
        created_at=now,
        disabled_at=None,
    )
    session.add(account)
    record(
        session,
        now=now,
        actor=owner.email,
        action=Action.SERVICE_ACCOUNT_CREATED,
        subject_type="identity",
        subject_id=email,
        name=name,
        role=role.value,
        owner=owner.email,
    )
    return account


def service_account(session: Session, name: str) -> ServiceAccount:
    account = session.scalar(select(ServiceAccount).where(ServiceAccount.name == name))
    if account is None:
        raise NotFound(f"no service account {name!r}")
    return account


def list_service_accounts(session: Session, *, limit: int, offset: int) -> Page[ServiceAccount]:
    return page_of(session, select(ServiceAccount).order_by(ServiceAccount.name), limit, offset)


def disable_service_account(session: Session, *, name: str, actor: str, now: datetime) -> ServiceAccount:
    """Deactivate the account: its tokens stop at once (they are checked against `active` on every
    call) and its grants go through the same re-evaluation as a deactivated person's."""
    account = service_account(session, name)
    if account.disabled_at is not None:
        return account
    account.disabled_at = now
    account.identity.active = False
    account.identity.updated_at = now
    record(
        session,
        now=now,
        actor=actor,
        action=Action.SERVICE_ACCOUNT_DISABLED,
        subject_type="identity",
        subject_id=account.identity.email,
        name=name,
    )
    record_people_change(
        session, identity_id=account.identity_id, reason=f"service account {name} disabled", now=now
    )
    return account
