"""`sluice config export`: the store's objects as a config document, so a setup made through the API
(or by an earlier file) can be kept as code and extended.

What a config file may own is exported: integrations, flows, scopes, bundles, schedules, webhooks,
directory sources, and the identities and groups the config itself declared (with their config
memberships). People and groups a directory source (SCIM, LDAP) keeps are left out: the file could
not take them over (the source itself is exported, so applying the file never removes it). The
document parses and plans clean: applying it unchanged changes nothing but where objects made
through the API now come from (they become the file's to manage)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.durations import format_duration
from sluice.services.config.checks import CONFIG_SOURCE
from sluice.services.config.directory_sources import exported_directory_sources
from sluice.store.people_tables import Schedule
from sluice.store.tables import AccessFlow, Group, GroupMember, Identity, Integration, Webhook
from sluice.store.targeting_tables import Bundle, Scope


def export_config(session: Session) -> dict[str, Any]:
    """The store as a config document (plain data, in the order and shape of a config file)."""
    document: dict[str, Any] = {
        "identities": _identities(session),
        "groups": [
            {"name": g.name, **({"description": g.description} if g.description else {})}
            for g in session.scalars(select(Group).where(Group.source == CONFIG_SOURCE).order_by(Group.name))
        ],
        "integrations": [
            _integration(row) for row in session.scalars(select(Integration).order_by(Integration.name))
        ],
        "flows": [row.spec for row in session.scalars(select(AccessFlow).order_by(AccessFlow.name))],
        "scopes": [
            {"name": s.name, "query": s.query, **({"description": s.description} if s.description else {})}
            for s in session.scalars(select(Scope).order_by(Scope.name))
        ],
        "bundles": [row.spec for row in session.scalars(select(Bundle).order_by(Bundle.name))],
        "schedules": [row.spec for row in session.scalars(select(Schedule).order_by(Schedule.name))],
        "webhooks": [
            {"name": w.name, "url": w.url, "secret_env": w.secret_env, "topics": list(w.topics)}
            for w in session.scalars(select(Webhook).order_by(Webhook.name))
        ],
        "directory_sources": exported_directory_sources(session),
    }
    return {key: value for key, value in document.items() if value}


def _integration(row: Integration) -> dict[str, Any]:
    item: dict[str, Any] = {"name": row.name, "kind": row.kind}
    if row.owner:
        item["owner"] = row.owner
    item["sync_interval"] = format_duration(timedelta(seconds=row.sync_interval_seconds))
    item["config"] = row.config or {}
    return item


def _identities(session: Session) -> list[dict[str, Any]]:
    memberships: dict[str, list[str]] = defaultdict(list)
    rows = session.execute(
        select(GroupMember.identity_id, Group.name)
        .join(Group, Group.id == GroupMember.group_id)
        .where(GroupMember.source == CONFIG_SOURCE)
        .order_by(Group.name)
    )
    for identity_id, group in rows:
        memberships[identity_id].append(group)
    found = []
    for person in session.scalars(
        select(Identity).where(Identity.source == CONFIG_SOURCE).order_by(Identity.email)
    ):
        item: dict[str, Any] = {"email": person.email}
        if person.name:
            item["name"] = person.name
        if person.manager_email:
            item["manager"] = person.manager_email
        if memberships.get(person.id):
            item["groups"] = memberships[person.id]
        if person.attributes:
            item["attributes"] = dict(person.attributes)
        if not person.active:
            item["active"] = False
        found.append(item)
    return found
