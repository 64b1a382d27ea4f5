"""`sluice plan` / `sluice apply`: make the store match a config document.

Objects are keyed by email (identities) or name (groups, integrations, flows). Whatever the file names
is created or updated and marked `source = "config"`; objects marked so that the file no longer names
are removed: identities are deactivated (never deleted), groups and flows are deleted, integrations are
deleted only when no grant refers to them. Group memberships from the file are the `group_members`
rows with source `config`; memberships with any other source (temporary ones from grants) are never
touched. Nothing here commits: the caller owns the transaction. Each kind of object has its own step
(`directory_objects`, `integrations`, `targeting`, `flows`, `people`, webhooks); this module runs them
in order over one `Reconciler`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict
from sluice.events.audit import Action, record
from sluice.services.audit.webhooks import reconcile_webhooks, webhook_problems
from sluice.services.config.checks import check_document
from sluice.services.config.directory_objects import reconcile_directory
from sluice.services.config.directory_sources import reconcile_directory_sources
from sluice.services.config.document import ConfigDocument
from sluice.services.config.flows import reconcile_flows
from sluice.services.config.integrations import reconcile_integrations
from sluice.services.config.people import reconcile_people
from sluice.services.config.plan import Plan, PlanEntry
from sluice.services.config.reconciler import Reconciler
from sluice.services.config.source import ConfigError
from sluice.services.config.targeting import reconcile_targeting

__all__ = ["Plan", "PlanEntry", "apply_config", "plan_config"]


def plan_config(session: Session, doc: ConfigDocument) -> Plan:
    """What applying `doc` would change. Raises `ConfigError` for problems in the document (references
    are checked against the store here too) and `Conflict` for removals that cannot happen."""
    problems = check_document(doc, session) + webhook_problems(doc)
    if problems:
        raise ConfigError(problems)
    return _walk(Reconciler(session, doc))


def apply_config(session: Session, doc: ConfigDocument, *, actor: str, now: datetime) -> Plan:
    """Make the store match `doc` and audit every change. All checks run before the first write, so a
    `ConfigError` or `Conflict` leaves the store as it was. Does not commit."""
    plan = plan_config(session, doc)
    if plan.is_empty:
        return plan
    applied = _walk(Reconciler(session, doc, write=(actor, now)))
    record(
        session,
        now=now,
        actor=actor,
        action=Action.CONFIG_APPLIED,
        subject_type="config",
        subject_id=doc.source.filename[:200],
        counts=applied.counts(),
    )
    session.flush()
    return applied


def _walk(walker: Reconciler) -> Plan:
    """Every step in the order the rows depend on each other: groups before the integrations and
    flows, scopes and bundles before the flows that use them."""
    reconcile_directory(walker)
    reconcile_integrations(walker)
    reconcile_targeting(walker)
    reconcile_flows(walker)
    reconcile_people(walker)
    reconcile_webhooks(walker)
    reconcile_directory_sources(walker)
    if walker.conflicts:
        raise Conflict("\n".join(walker.conflicts), conflicts=walker.conflicts)
    return walker.plan
