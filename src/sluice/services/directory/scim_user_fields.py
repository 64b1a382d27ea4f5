"""What Sluice reads from a SCIM User: the identity's email, name, manager and the attributes flow
conditions test, and what is kept of the user to read back to the provider."""

from __future__ import annotations

import re
from typing import Any

from scim2_models import Context, EnterpriseUser, InvalidValueException, User
from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.services.directory.sources import SCIM_PREFIX
from sluice.store.scim_tables import ScimToken
from sluice.store.tables import Identity

ScimUser = User[EnterpriseUser]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NOT_LOCAL = re.compile(r"[^a-z0-9._+-]+")
# SCIM attribute -> the identity attribute flow conditions test (`{attribute: department, is: payments}`)
_ENTERPRISE_ATTRIBUTES = {
    "employee_number": "employeeNumber",
    "cost_center": "costCenter",
    "organization": "organization",
    "division": "division",
    "department": "department",
}
_CORE_ATTRIBUTES = {"title": "title", "user_type": "userType", "locale": "locale"}
SCIM_ATTRIBUTES = frozenset({*_ENTERPRISE_ATTRIBUTES.values(), *_CORE_ATTRIBUTES.values()})


def scim_attributes(session: Session) -> frozenset[str]:
    """The attributes SCIM users may carry, once a SCIM source exists: a flow may test them before the
    identity provider has pushed anyone."""
    return SCIM_ATTRIBUTES if session.scalar(select(ScimToken.id).limit(1)) is not None else frozenset()


def email_of(user: ScimUser, source: str) -> str:
    """The primary email, else any email, else userName when it is an address; a user with none (a
    service account, an employee number as userName) gets `<userName>@<source>.scim.invalid`, an
    address that can never receive mail (RFC 2606)."""
    emails = user.emails or []
    candidates = [e.value for e in emails if e.primary] + [e.value for e in emails] + [user.user_name]
    for candidate in candidates:
        if candidate and _EMAIL.match(candidate.strip()):
            return candidate.strip().lower()
    local = _NOT_LOCAL.sub("-", (user.user_name or "").strip().lower()).strip("-.")[:200]
    if not local:
        raise InvalidValueException(detail="a user needs an email address: as userName or in emails[].value")
    return f"{local}@{source.removeprefix(SCIM_PREFIX)}.scim.invalid"


def display_name(user: ScimUser) -> str:
    if user.display_name:
        return user.display_name[:200]
    name = user.name
    if name is None:
        return ""
    if name.formatted:
        return name.formatted[:200]
    return " ".join(p for p in (name.given_name, name.family_name) if p)[:200]


def manager_email(session: Session, user: ScimUser) -> str | None:
    extension = user[EnterpriseUser]
    manager = extension.manager if extension is not None else None
    value = (manager.value or "").strip() if manager is not None else ""
    if not value:
        return None
    row = session.get(Identity, value)
    if row is not None:
        return row.email
    return value.lower() if _EMAIL.match(value) else None


def attributes_of(user: ScimUser) -> dict[str, str]:
    found: dict[str, str] = {}
    extension = user[EnterpriseUser]
    for field, name in _ENTERPRISE_ATTRIBUTES.items():
        value = getattr(extension, field, None) if extension is not None else None
        if value not in (None, ""):
            found[name] = str(value)[:500]
    for field, name in _CORE_ATTRIBUTES.items():
        value = getattr(user, field, None)
        if value not in (None, ""):
            found[name] = str(value)[:500]
    return found


def payload_of(user: ScimUser) -> dict[str, Any]:
    """What is kept of a user: everything the provider may read back (never a password)."""
    data = user.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    for key in ("id", "meta", "groups"):
        data.pop(key, None)
    return data
