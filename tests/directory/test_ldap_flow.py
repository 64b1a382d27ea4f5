"""LDAP directory sync feeding an access flow end to end: the requesters are an LDAP group, the
approver is the requester's manager as LDAP says, the grant is made; then the person leaves the LDAP
group, the worker's next sync takes it in and the grant is revoked, with the audit naming ldap:corp."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import transaction
from sluice.store.tables import AuditEvent, Group, GroupMember
from tests.directory.ldap_fixtures import Directory, Sluice

ROOT = "root@example.com"


def document(directory: Directory, *flows: dict[str, Any], **ldap: Any) -> dict[str, Any]:
    return {
        "identities": [{"email": ROOT, "name": "Root"}],
        "directory_sources": [directory.source_config(**ldap)],
        "integrations": [
            {
                "name": "groups",
                "kind": "builtin_groups",
                "owner": ROOT,
                "config": {"groups": [{"name": "oncall"}]},
            }
        ],
        "flows": list(flows),
    }


MANAGER_FLOW = {
    "name": "payments-oncall",
    "requesters": [{"group": "payments-team"}],
    "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
    "approvers": [{"manager": True}],
    "max_duration": "4h",
}


def oncall_members(sluice: Sluice) -> set[str]:
    with transaction(sluice.runtime.factory) as session:
        group = session.scalar(select(Group).where(Group.name == "oncall"))
        assert group is not None
        return {
            m.identity_id
            for m in session.scalars(select(GroupMember).where(GroupMember.group_id == group.id))
        }


def ask(sluice: Sluice, email: str) -> dict[str, Any]:
    body = {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "incident 7"}
    return dict(sluice.post(email, "/requests", body).json())


def test_an_ldap_manager_approves_and_leaving_the_ldap_group_revokes(
    directory: Directory, any_store_sluice: Sluice
) -> None:
    sluice = any_store_sluice
    directory.add_person("mona")
    directory.add_person("pat", manager="mona")
    directory.add_person("otto", manager="mona")
    directory.add_group("payments-team", ["pat"])
    sluice.apply(document(directory))
    sync_integration(sluice.runtime.factory, sluice.runtime.hub, "groups", clock=sluice.clock)
    assert sluice.sync().ok
    sluice.apply(document(directory, MANAGER_FLOW))  # the flow names the group LDAP brought

    pat = sluice.identity("pat@example.com")
    assert (pat.source, pat.manager_email, pat.name) == ("ldap:corp", "mona@example.com", "Pat Example")
    refused = sluice.post(
        "otto@example.com",
        "/requests",
        {"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "x"},
    )
    assert refused.status_code == 403, refused.text  # otto is not in the LDAP group

    asked = ask(sluice, "pat@example.com")
    assert asked["status"] == "pending", asked
    assert sluice.post(
        "otto@example.com", f"/requests/{asked['id']}/approve", {"reason": "ok"}
    ).status_code in (
        403,
        404,
    )
    approved = sluice.post("mona@example.com", f"/requests/{asked['id']}/approve", {"reason": "ok"})
    assert approved.status_code == 200, approved.text
    sluice.worker.run_once()
    assert pat.id in oncall_members(sluice)

    directory.set_members("payments-team", ["otto"])
    sluice.clock.advance(minutes=16)  # the source's interval: the worker's duty syncs it
    sluice.worker.run_once()
    sluice.worker.run_once()
    assert pat.id not in oncall_members(sluice)
    with transaction(sluice.runtime.factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.actor == "ldap:corp")).all()
        member_change = [e for e in events if e.subject_id == "payments-team" and e.action == "admin.changed"]
        assert member_change and "removed pat@example.com" in (member_change[-1].reason or "")
        ended = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "grant.no_longer_eligible")
        ).all()
        assert ended, "the grant the LDAP group allowed was ended by re-evaluation"
