"""Who a verified ID token names: the person in the directory, created on first sign-in only when the
settings allow it; their groups from the groups claim when one is configured.

Groups from the claim are memberships with source `oidc`, replaced at each sign-in; memberships from
the config file, the API or SCIM are never touched. A change is queued for re-evaluation like any
other directory change, so grants follow."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.service_accounts import is_service_account
from sluice.services.signin.id_tokens import SignInRefused
from sluice.services.signin.settings import SignInSettings
from sluice.store.people_queries import record_people_change
from sluice.store.queries import group_names_of, identity_by_email
from sluice.store.tables import Group, GroupMember, Identity
from sluice.store.types import new_id

OIDC_SOURCE = "oidc"
ACTOR = "oidc"
MAX_GROUPS = 500
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def person_for_claims(
    session: Session, settings: SignInSettings, claims: dict[str, Any], *, now: datetime
) -> tuple[Identity, bool]:
    """The identity the claims name and whether their session is admin. Raises `SignInRefused`."""
    email = _email_of(settings, claims)
    identity = identity_by_email(session, email)
    if identity is None:
        if not settings.create_unknown:
            raise SignInRefused(
                f"{email} is not in Sluice's directory; ask an administrator to add you "
                "(or to allow new people with SLUICE_OIDC_CREATE_UNKNOWN)"
            )
        identity = _create(session, email, _name_of(settings, claims), now)
    if not identity.active:
        raise SignInRefused(f"{email} is not active in Sluice's directory")
    if is_service_account(session, identity.id):
        raise SignInRefused(f"{email} is a service account; service accounts act only through API tokens")
    groups = _groups_of(settings, claims)
    if groups is not None:
        _set_oidc_groups(session, identity, groups, now)
    return identity, is_admin(session, settings, identity, now)


def is_admin(session: Session, settings: SignInSettings, identity: Identity, now: datetime) -> bool:
    """Whether a session of `identity` is an admin one: a member of an admin group."""
    return bool(settings.admin_groups & group_names_of(session, identity.id, now))


def _email_of(settings: SignInSettings, claims: dict[str, Any]) -> str:
    value = claims.get(settings.email_claim)
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise SignInRefused(
            f"the provider sent no email address in the {settings.email_claim!r} claim; "
            "ask for the email scope or set SLUICE_OIDC_EMAIL_CLAIM"
        )
    if settings.require_email_verified:
        verified = claims.get("email_verified")
        if verified is not True and verified != "true":
            raise SignInRefused(
                f"the provider does not vouch for {value.strip()} (email_verified is not true); "
                "verify the address with the provider first"
            )
    return value.strip().lower()


def _name_of(settings: SignInSettings, claims: dict[str, Any]) -> str:
    value = claims.get(settings.name_claim)
    return value.strip()[:200] if isinstance(value, str) else ""


def _groups_of(settings: SignInSettings, claims: dict[str, Any]) -> list[str] | None:
    if settings.groups_claim is None or settings.groups_claim not in claims:
        return None
    value = claims[settings.groups_claim]
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    kept = [n.strip() for n in names if isinstance(n, str) and n.strip() and len(n.strip()) <= 200]
    return list(dict.fromkeys(kept))[:MAX_GROUPS]


def _create(session: Session, email: str, name: str, now: datetime) -> Identity:
    identity = Identity(
        id=new_id("id"),
        email=email,
        name=name,
        active=True,
        attributes={},
        source=OIDC_SOURCE,
        created_at=now,
        updated_at=now,
    )
    session.add(identity)
    session.flush()
    record(
        session,
        now=now,
        actor=ACTOR,
        action=Action.OBJECT_CREATED,
        subject_type="identity",
        subject_id=email,
        kind="identity",
        name=email,
        changed=["created"],
    )
    record_people_change(session, identity_id=identity.id, reason=f"identity {email}: created", now=now)
    return identity


def _set_oidc_groups(session: Session, identity: Identity, names: list[str], now: datetime) -> None:
    existing = {g.name: g for g in session.scalars(select(Group).where(Group.name.in_(names)))}
    for name in names:
        if name not in existing:
            existing[name] = Group(id=new_id("grp"), name=name, description="", source=OIDC_SOURCE)
            session.add(existing[name])
    session.flush()
    wanted = {existing[n].id for n in names}
    current = set(
        session.scalars(
            select(GroupMember.group_id).where(
                GroupMember.identity_id == identity.id, GroupMember.source == OIDC_SOURCE
            )
        )
    )
    if wanted == current:
        return
    for group_id in wanted - current:
        session.add(
            GroupMember(group_id=group_id, identity_id=identity.id, source=OIDC_SOURCE, expires_at=None)
        )
    if current - wanted:
        session.execute(
            delete(GroupMember).where(
                GroupMember.identity_id == identity.id,
                GroupMember.source == OIDC_SOURCE,
                GroupMember.group_id.in_(current - wanted),
            )
        )
    session.flush()
    record(
        session,
        now=now,
        actor=ACTOR,
        action=Action.OBJECT_CHANGED,
        subject_type="identity",
        subject_id=identity.email,
        kind="identity",
        name=identity.email,
        changed=["groups"],
    )
    record_people_change(
        session, identity_id=identity.id, reason=f"identity {identity.email}: groups from sign-in", now=now
    )
