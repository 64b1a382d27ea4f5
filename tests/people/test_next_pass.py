"""Changes whose effect on access is due on the worker's next pass, not at the next inventory sync or
the periodic full re-evaluation: an injected tag cleared over a discovered one, a temporary group
membership that ends. The clock does not move between the passes."""

from __future__ import annotations

from sqlalchemy import select

from sluice.connectors.base import DiscoveredResource
from sluice.domain.states import Actual, Desired
from sluice.services.grants.revocation import revoke_grant
from sluice.services.targeting.inventory import apply_discovery
from sluice.services.targeting.tag_changes import TagChange, apply_tag_changes
from sluice.store.db import transaction
from sluice.store.tables import Integration
from tests.people.conftest import BUILTIN_GROUPS, People

TARGET_ONCALL = [
    {"integration": "groups", "type": "group", "select": {"names": ["oncall"]}, "permissions": ["member"]}
]


def _discover_groups(people: People, tags: dict[str, dict[str, str]]) -> None:
    """As if the target had reported these tags on the built-in groups."""
    found = [DiscoveredResource("group", n, f"groups/{n}", None, tags.get(n, {})) for n in BUILTIN_GROUPS]
    with transaction(people.factory) as session:
        integration = session.scalars(select(Integration).where(Integration.name == "groups")).one()
        apply_discovery(session, integration, found, people.clock())


def _put_injected_tags(people: People, resource: str, tags: dict[str, str]) -> None:
    with transaction(people.factory) as session:
        change = TagChange(resource, set=tags)
        apply_tag_changes(session, [change], actor="dspm@example.com", now=people.clock(), replace=True)


def test_clearing_an_injected_tag_re_evaluates_against_the_discovered_value(people: People) -> None:
    """Discovered pii=true, overridden to pii=false, then the injected tags cleared: the resource is
    pii again at once, so a grant under a flow that excludes pii is revoked on the next pass."""
    _discover_groups(people, {"audit": {"pii": "true"}})
    people.flow(
        {
            "name": "sre-non-pii",
            "requesters": [{"group": "sre"}],
            "targets": [
                {
                    "integration": "groups",
                    "type": "group",
                    "select": {"exclude": {"tags": ["pii=true"]}},
                    "permissions": ["member"],
                }
            ],
            "max_duration": "8h",
        }
    )
    _put_injected_tags(people, "groups/audit", {"pii": "false"})
    people.submit("bob", group="audit", minutes=60)
    worker = people.worker()
    worker.run_once()
    assert "audit" in people.groups_of("bob")

    _put_injected_tags(people, "groups/audit", {})
    worker.run_once()
    assert "audit" not in people.groups_of("bob")
    (grant,) = people.grants_of("bob")
    assert grant.desired == Desired.REVOKED
    assert grant.end_reason is not None and grant.end_reason.startswith("no longer eligible")


def test_ending_a_group_membership_grant_revokes_what_the_group_allowed_on_the_next_pass(
    people: People,
) -> None:
    """Bob joins `oncall` through a grant, and being in `oncall` lets him join `audit`. When the
    `oncall` grant is revoked, the `audit` grant goes on the pass right after, not minutes later."""
    people.flow(
        {
            "name": "sre-oncall",
            "requesters": [{"group": "sre"}],
            "targets": TARGET_ONCALL,
            "max_duration": "8h",
        }
    )
    people.flow(
        {
            "name": "oncall-audit",
            "requesters": [{"group": "oncall"}],
            "targets": [
                {
                    "integration": "groups",
                    "type": "group",
                    "select": {"names": ["audit"]},
                    "permissions": ["member"],
                }
            ],
            "max_duration": "8h",
        }
    )
    worker = people.worker()
    people.submit("bob", group="oncall", minutes=240)
    worker.run_once()
    people.submit("bob", group="audit", minutes=240)
    worker.run_once()
    assert {"oncall", "audit"} <= people.groups_of("bob")
    oncall = next(g for g in people.grants_of("bob") if g.resource_path == "groups/oncall")

    with transaction(people.factory) as session:
        bob = people.identity(session, "bob")
        revoke_grant(
            session, grant_id=oncall.id, actor=bob, is_admin=False, reason="done", now=people.clock()
        )
    worker.run_once()  # the membership ends in the target
    assert "oncall" not in people.groups_of("bob")
    with transaction(people.factory) as session:  # the change it recorded is due at once
        assert worker.people.next_due(session, people.clock()) == people.clock()
    worker.run_once()
    assert "audit" not in people.groups_of("bob")
    audit = next(g for g in people.grants_of("bob") if g.resource_path == "groups/audit")
    assert audit.desired == Desired.REVOKED and audit.actual == Actual.REVOKED
    assert audit.end_reason == "no longer eligible: not in group oncall"
