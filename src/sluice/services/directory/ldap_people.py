"""Writing an LDAP snapshot's people into the directory as the source `ldap:<name>`.

A source writes only the identities it owns: a person whose email another source owns (the config
file, SCIM, the API, another LDAP source) is a conflict, reported and left alone, never merged. People
who are gone from the directory, or match its `disabled_filter`, are deactivated (identities are never
deleted: the history of grants refers to them). Every change is audited with the source as the actor
and queued for re-evaluation. Nothing here commits."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.changes import add_blank_identity
from sluice.services.directory.ldap_reader import DirectorySnapshot, DnKey, LdapPerson, dn_key
from sluice.services.directory.sources import source_words
from sluice.store.people_queries import record_people_change
from sluice.store.tables import Identity

log = logging.getLogger("sluice.directory")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_LISTED = 200  # conflicts and warnings kept per sync
_LOOKUP_CHUNK = 5000  # values per IN (...): SQLite binds at most 32,766 in one statement


@dataclass
class SyncResult:
    """What one sync did, in counts and words; kept on the source and answered by the API."""

    source: str
    people_created: int = 0
    people_changed: int = 0
    people_deactivated: int = 0
    groups_created: int = 0
    groups_removed: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0
    conflicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}

    def as_dict(self) -> dict[str, Any]:
        """Counts and words; at most MAX_LISTED conflicts and warnings each (the rest counted)."""
        listed = {}
        for key in ("conflicts", "warnings"):
            items: list[str] = getattr(self, key)
            more = [f"and {len(items) - MAX_LISTED} more"] if len(items) > MAX_LISTED else []
            listed[key] = items[:MAX_LISTED] + more
        return {**vars(self), **listed}


@dataclass
class SyncContext:
    session: Session
    source: str
    now: datetime
    result: SyncResult
    known_conflicts: frozenset[str]  # reported by the last sync: not audited again

    def conflict(self, kind: str, name: str, owner: str) -> None:
        detail = (
            f"{kind} {name} is owned by {source_words(owner)}; {source_words(self.source)} leaves it alone"
        )
        self.result.conflicts.append(detail)
        if detail in self.known_conflicts:
            return
        log.warning("directory conflict: %s", detail)
        record(
            self.session,
            now=self.now,
            actor=self.source,
            action=Action.DIRECTORY_CONFLICT,
            subject_type=kind,
            subject_id=name[:200],
            reason=detail,
            kind=kind,
            name=name,
            source=self.source,
        )

    def audit(self, kind: str, name: str, action: Action, changed: list[str], reason: str = "") -> None:
        extra: dict[str, Any] = {"changed": changed} if action == Action.OBJECT_CHANGED else {}
        record(
            self.session,
            now=self.now,
            actor=self.source,
            action=action,
            subject_type=kind,
            subject_id=name[:200],
            reason=reason[:1000] or None,
            kind=kind,
            name=name,
            source=self.source,
            **extra,
        )


def sync_people(ctx: SyncContext, snapshot: DirectorySnapshot) -> dict[DnKey, Identity]:
    """Create, update and deactivate the source's identities; returns the ones it owns by DN."""
    people = _usable_people(ctx, snapshot.people)
    by_dn = {key: person.email for key, person in people.items() if person.email}
    existing = _identities(ctx, [p.email for p in people.values() if p.email])
    owned: dict[DnKey, Identity] = {}
    for key, person in people.items():
        email = person.email or ""
        identity = existing.get(email)
        if identity is not None and identity.source != ctx.source:
            ctx.conflict("identity", email, identity.source)
            continue
        created = identity is None
        if identity is None:
            identity = add_blank_identity(ctx.session, email, source=ctx.source, now=ctx.now)
            existing[email] = identity
        wanted = {
            "name": person.name,
            "active": not person.disabled,
            "manager_email": _manager(ctx, person, by_dn),
            "attributes": person.attributes,
        }
        changed = [k for k, v in wanted.items() if getattr(identity, k) != v]
        for column in changed:
            setattr(identity, column, wanted[column])
        owned[key] = identity
        if created or changed:
            identity.updated_at = ctx.now
            words = [c.removesuffix("_email") for c in changed]
            if created:
                ctx.result.people_created += 1
                ctx.audit("identity", email, Action.OBJECT_CREATED, [])
            else:
                ctx.result.people_changed += 1
                ctx.audit("identity", email, Action.OBJECT_CHANGED, words)
            what = "created" if created else ", ".join(words)
            _queue(ctx, identity, f"{ctx.source} {what} {email}")
    seen = {i.id for i in owned.values()}
    for identity in existing.values():
        if identity.source == ctx.source and identity.active and identity.id not in seen:
            identity.active = False
            identity.updated_at = ctx.now
            ctx.result.people_deactivated += 1
            ctx.audit(
                "identity", identity.email, Action.OBJECT_CHANGED, ["active"], "gone from the directory"
            )
            _queue(ctx, identity, f"{ctx.source}: {identity.email} is gone from the directory")
    ctx.session.flush()
    return owned


def _queue(ctx: SyncContext, identity: Identity, reason: str) -> None:
    ctx.session.flush()  # a new identity gets its row before its change is queued
    record_people_change(ctx.session, identity_id=identity.id, reason=reason, now=ctx.now)


def _usable_people(ctx: SyncContext, people: list[LdapPerson]) -> dict[DnKey, LdapPerson]:
    """People with a DN and an email address, one entry per address (the first DN in order wins; a
    second entry with the same address is a conflict inside the directory)."""
    found: dict[DnKey, LdapPerson] = {}
    emails: dict[str, str] = {}
    no_email = 0
    for person in sorted(people, key=lambda p: p.dn.lower()):
        key = dn_key(person.dn)
        if key is None:
            continue
        if not person.email or not _EMAIL.match(person.email):
            no_email += 1
            continue
        if person.email in emails:
            ctx.result.conflicts.append(
                f"identity {person.email} is the email of both {emails[person.email]} and {person.dn}; "
                f"only {emails[person.email]} is read"
            )
            continue
        emails[person.email] = person.dn
        found[key] = person
    if no_email:
        ctx.result.warnings.append(f"{no_email} entries have no usable email address and were skipped")
    return found


def _manager(ctx: SyncContext, person: LdapPerson, by_dn: dict[DnKey, str]) -> str | None:
    if not person.manager_dn:
        return None
    key = dn_key(person.manager_dn)
    manager = by_dn.get(key) if key is not None else None
    if manager is None:
        ctx.result.warnings.append(f"{person.email}: manager {person.manager_dn} is not a person read")
    return manager if manager != person.email else None


def _identities(ctx: SyncContext, emails: list[str]) -> dict[str, Identity]:
    """The source's identities and any identity holding one of `emails`, by lower-cased email."""
    lowered = func.lower(Identity.email)
    found = {
        i.email.lower(): i for i in ctx.session.scalars(select(Identity).where(Identity.source == ctx.source))
    }
    for start in range(0, len(emails), _LOOKUP_CHUNK):
        chunk = emails[start : start + _LOOKUP_CHUNK]
        query = select(Identity).where(lowered.in_(chunk))
        found.update({i.email.lower(): i for i in ctx.session.scalars(query)})
    return found
