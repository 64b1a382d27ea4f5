"""The LDAP directory source on a real slapd: what a sync writes, what it leaves alone (rows of other
sources: conflicts), deactivation, groups from memberOf, paged reads, and a directory that cannot be
read changing nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sluice.domain.errors import Conflict
from sluice.services.directory.ldap_sync import DirectorySync, claim_due_sources
from sluice.store.db import transaction
from sluice.store.directory_tables import DirectorySource
from sluice.store.people_queries import people_snapshot
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AuditEvent, Group
from tests.directory.ldap_fixtures import Directory, Sluice

ROOT = "root@example.com"


def groups_of(sluice: Sluice, email: str) -> set[str]:
    identity = sluice.identity(email)
    with transaction(sluice.runtime.factory) as session:
        return set(people_snapshot(session, sluice.clock(), [identity.id])[identity.id].groups)


def events(sluice: Sluice, action: str) -> list[AuditEvent]:
    with transaction(sluice.runtime.factory) as session:
        found = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        session.expunge_all()
        return list(found)


def test_a_sync_reads_people_managers_groups_and_attributes_in_pages(
    directory: Directory, sluice: Sluice
) -> None:
    directory.add_person("mona", departmentNumber="payments")
    for uid in ("pat", "quinn", "ruth", "sam"):
        directory.add_person(uid, manager="mona", departmentNumber="sales")
    directory.add_group("payments-team", ["pat", "quinn"])
    directory.add_group("auditors", ["ruth"], unique=True)  # uniqueMember
    sluice.apply(
        {"directory_sources": [directory.source_config(attributes={"department": "departmentNumber"})]}
    )
    outcome = sluice.sync()
    assert outcome.ok and outcome.result is not None
    assert outcome.result.people_created == 5  # five entries at two per page
    assert outcome.result.memberships_added == 3
    sam = sluice.identity("sam@example.com")
    assert (sam.manager_email, sam.attributes, sam.source) == (
        "mona@example.com",
        {"department": "sales"},
        "ldap:corp",
    )
    assert groups_of(sluice, "pat@example.com") == {"payments-team"}
    assert groups_of(sluice, "ruth@example.com") == {"auditors"}
    again = sluice.sync()
    assert again.result is not None and not any(
        again.result.counts().values()
    )  # nothing changed: nothing written


def test_people_gone_or_disabled_are_deactivated_and_re_evaluated(
    directory: Directory, sluice: Sluice
) -> None:
    directory.add_person("pat")
    leaver = directory.add_person("lee")
    directory.add_group("team", ["pat", "lee"])
    sluice.apply({"directory_sources": [directory.source_config(disabled_filter="(employeeType=disabled)")]})
    sluice.sync()
    directory.modify(directory.person_dn("pat"), {"employeeType": ["disabled"]})
    directory.set_members("team", ["pat"])
    directory.delete(leaver)
    with transaction(sluice.runtime.factory) as session:
        session.query(PeopleChange).delete()
    result = sluice.sync().result
    assert result is not None and result.people_deactivated == 1 and result.people_changed == 1
    assert not sluice.identity("pat@example.com").active
    assert not sluice.identity("lee@example.com").active
    with transaction(sluice.runtime.factory) as session:
        queued = {c.identity_id for c in session.scalars(select(PeopleChange))}
    assert {sluice.identity("pat@example.com").id, sluice.identity("lee@example.com").id} <= queued
    deactivations = [
        e for e in events(sluice, "admin.changed") if e.actor == "ldap:corp" and e.subject_type == "identity"
    ]
    assert {(e.subject_id, tuple(e.details["changed"])) for e in deactivations} == {
        ("pat@example.com", ("active",)),
        ("lee@example.com", ("active",)),
    }
    directory.modify(directory.person_dn("pat"), {"employeeType": []})
    sluice.sync()
    assert sluice.identity("pat@example.com").active  # enabled again in LDAP: active again


def test_another_sources_person_or_group_is_a_conflict_reported_once(
    directory: Directory, sluice: Sluice
) -> None:
    directory.add_person("pat", displayName="Pat From LDAP")
    directory.add_person("quinn")
    directory.add_group("sre", ["quinn"])
    config_people = [{"email": "pat@example.com", "name": "Pat From Config", "groups": ["sre"]}]
    sluice.apply({"identities": config_people, "directory_sources": [directory.source_config()]})
    outcome = sluice.sync()
    assert outcome.ok and outcome.result is not None
    assert sorted(outcome.result.conflicts) == [
        "group sre is owned by the config file; the LDAP source 'corp' leaves it alone",
        "identity pat@example.com is owned by the config file; the LDAP source 'corp' leaves it alone",
    ]
    pat = sluice.identity("pat@example.com")
    assert (pat.source, pat.name) == ("config", "Pat From Config")  # never merged
    assert groups_of(sluice, "quinn@example.com") == set()  # not written into the config's group
    assert len(events(sluice, "directory.conflict")) == 2
    assert sluice.sync().result is not None
    assert len(events(sluice, "directory.conflict")) == 2  # the same conflict is audited once


def test_groups_from_member_of_values(directory: Directory, sluice: Sluice) -> None:
    """`memberOf` is kept by Active Directory and OpenLDAP's memberof overlay; any DN-valued attribute
    of the person reads the same way (here `seeAlso`)."""
    directory.add_person("pat", seeAlso=[directory.group_dn("payments"), directory.group_dn("on call")])
    source = directory.source_config(member_of_attribute="seeAlso", groups_base_dn=None)
    sluice.apply({"directory_sources": [source]})
    sluice.sync()
    assert groups_of(sluice, "pat@example.com") == {"payments", "on call"}
    directory.modify(directory.person_dn("pat"), {"seeAlso": [directory.group_dn("payments")]})
    result = sluice.sync().result
    assert result is not None and result.groups_removed == 1
    assert groups_of(sluice, "pat@example.com") == {"payments"}
    with transaction(sluice.runtime.factory) as session:
        assert session.scalar(select(Group).where(Group.name == "on call")) is None


def test_an_unreadable_directory_changes_nothing(
    directory: Directory, sluice: Sluice, tmp_path: Path
) -> None:
    directory.add_person("pat")
    sluice.apply({"directory_sources": [directory.source_config()]})
    sluice.sync()
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password-123\n")
    bad = directory.source_config(bind_password={"file": str(wrong)})
    sluice.apply({"directory_sources": [bad]})
    outcome = sluice.sync()
    assert not outcome.ok and outcome.error is not None
    assert "invalidCredentials" in outcome.error and "not-the-password-123" not in outcome.error
    assert sluice.identity("pat@example.com").active
    with transaction(sluice.runtime.factory) as session:
        row = session.scalar(select(DirectorySource))
        assert row is not None and row.last_error == outcome.error
    assert events(sluice, "directory.sync_failed")


def test_removing_the_source_from_the_config_deactivates_its_people(
    directory: Directory, sluice: Sluice
) -> None:
    directory.add_person("pat")
    directory.add_group("team", ["pat"])
    sluice.apply({"directory_sources": [directory.source_config()]})
    sluice.sync()
    sluice.apply({"directory_sources": []})
    assert not sluice.identity("pat@example.com").active
    assert groups_of(sluice, "pat@example.com") == set()


def test_only_an_admin_syncs_through_the_api(directory: Directory, sluice: Sluice) -> None:
    directory.add_person("pat")
    sluice.apply({"identities": [{"email": ROOT}], "directory_sources": [directory.source_config()]})
    sluice.token(ROOT, admin=True)
    answer = sluice.post(ROOT, "/directory/sources/corp/sync")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] and answer.json()["result"]["people_created"] == 1
    assert sluice.post("pat@example.com", "/directory/sync").status_code == 403
    missing = sluice.post(ROOT, "/directory/sources/nope/sync")
    assert missing.status_code == 404 and "corp" in missing.json()["detail"]
    listed = sluice.get(ROOT, "/directory/sources").json()["items"]
    assert [(s["name"], s["source"], s["last_error"]) for s in listed] == [("corp", "ldap:corp", None)]


def test_the_config_file_and_the_api_leave_ldap_people_alone(directory: Directory, sluice: Sluice) -> None:
    directory.add_person("pat")
    sluice.apply({"identities": [{"email": ROOT}], "directory_sources": [directory.source_config()]})
    sluice.sync()
    with pytest.raises(Conflict, match="owned by the LDAP source 'corp'"):
        sluice.apply(
            {
                "identities": [{"email": ROOT}, {"email": "pat@example.com", "name": "Renamed"}],
                "directory_sources": [directory.source_config()],
            }
        )
    sluice.token(ROOT, admin=True)
    answer = sluice.client.patch(
        "/api/v1/identities/pat@example.com",
        headers={"Authorization": f"Bearer {sluice.token(ROOT)}"},
        json={"name": "Renamed"},
    )
    assert answer.status_code == 409, answer.text
    assert sluice.identity("pat@example.com").name == "Pat Example"


def test_a_due_source_is_claimed_by_one_worker_until_its_interval_passes(
    directory: Directory, any_store_sluice: Sluice
) -> None:
    sluice = any_store_sluice
    directory.add_person("pat")
    sluice.apply({"directory_sources": [directory.source_config()]})
    factory, now = sluice.runtime.factory, sluice.clock()
    assert claim_due_sources(factory, now) == ["corp"]
    assert claim_due_sources(factory, now) == []  # another worker finds nothing to do
    duty = DirectorySync(factory, clock=sluice.clock)
    with transaction(factory) as session:
        assert duty.next_due(session, now) == now + timedelta(minutes=15)
    sluice.clock.advance(minutes=15)
    outcomes = duty.run()
    assert [(o.name, o.ok) for o in outcomes] == [("corp", True)]
    assert sluice.identity("pat@example.com").source == "ldap:corp"
    assert duty.run() == []


def test_a_value_no_store_can_hold_is_left_out(directory: Directory, any_store_sluice: Sluice) -> None:
    """LDAP octet strings may hold a NUL, which PostgreSQL refuses: the value is left out, the rest is
    synced."""
    sluice = any_store_sluice
    directory.add_person("pat", description="a\x00b", title="engineer")
    source = directory.source_config(attributes={"note": "description", "title": "title"})
    sluice.apply({"directory_sources": [source]})
    assert sluice.sync().ok
    assert sluice.identity("pat@example.com").attributes == {"title": "engineer"}


def test_a_broken_source_does_not_stop_the_worker_pass(
    directory: Directory, sluice: Sluice, caplog: pytest.LogCaptureFixture
) -> None:
    sluice.apply({"directory_sources": [directory.source_config()]})
    with transaction(sluice.runtime.factory) as session:
        row = session.scalar(select(DirectorySource))
        assert row is not None
        row.spec = {**row.spec, "url": "not a url"}  # e.g. written by an older release
    assert DirectorySync(sluice.runtime.factory, clock=sluice.clock).run() == []
    assert "directory source corp: sync failed" in caplog.text
    sluice.worker.run_once()  # the rest of the pass runs
