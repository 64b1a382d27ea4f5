"""Config as code: the file is checked whole before anything is applied, and applying makes the store
match it, idempotently, with an audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import Conflict
from sluice.domain.flows import FlowSpec
from sluice.events.audit import Action
from sluice.services.config.apply import Plan, apply_config, plan_config
from sluice.services.config.document import ConfigDocument
from sluice.services.config.file import ConfigError, parse_config
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import (
    AccessFlow,
    AuditEvent,
    Base,
    Grant,
    Group,
    GroupMember,
    Identity,
    Integration,
    OutboxMessage,
    Resource,
)
from tests.services.config_samples import GOOD, edit

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ADMIN = "admin@example.com"


def _factory(url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from _factory(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.fixture
def any_store(store_url: str) -> Iterator[sessionmaker[Session]]:
    yield from _factory(store_url)


def apply_text(factory: sessionmaker[Session], text: str, now: datetime = NOW) -> Plan:
    with transaction(factory) as session:
        doc = parse_config(text, "sluice.yaml", session=session)
        return apply_config(session, doc, actor=ADMIN, now=now)


def counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with transaction(factory) as session:
        return {
            table.__tablename__: session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Identity, Group, GroupMember, Integration, AccessFlow, AuditEvent, OutboxMessage)
        }


# --- applying ---------------------------------------------------------------------------------------


def test_a_good_file_applies_and_reports_what_it_created(any_store: sessionmaker[Session]) -> None:
    plan = apply_text(any_store, GOOD)

    assert set(plan.created) == {
        ("identity", "alice@example.com"),
        ("identity", "bob@example.com"),
        ("identity", "carol@example.com"),
        ("group", "engineering"),
        ("group", "oncall"),
        ("group", "leads"),
        ("membership", "engineering/alice@example.com"),
        ("membership", "engineering/bob@example.com"),
        ("membership", "oncall/bob@example.com"),
        ("membership", "leads/carol@example.com"),
        ("integration", "local-pg"),
        ("integration", "groups"),
        ("flow", "engineering-read-pg"),
        ("flow", "oncall-membership"),
    }
    assert plan.changed == [] and plan.removed == []
    assert "14 to create, 0 to change, 0 to remove" in plan.summary()

    with transaction(any_store) as session:
        alice = session.scalars(select(Identity).where(Identity.email == "alice@example.com")).one()
        assert (alice.name, alice.manager_email, alice.attributes, alice.active, alice.source) == (
            "Alice Example",
            "carol@example.com",
            {"department": "eng"},
            True,
            "config",
        )
        pg = session.scalars(select(Integration).where(Integration.name == "local-pg")).one()
        assert pg.sync_interval_seconds == 600
        assert pg.owner == "carol@example.com"
        assert pg.config == {"url": {"env": "SLUICE_DEMO_POSTGRES_URL"}, "databases": ["sluice_demo"]}
        engineering = session.scalars(select(Group).where(Group.name == "engineering")).one()
        assert engineering.description == "Product engineers"
        oncall = session.scalars(select(Group).where(Group.name == "oncall")).one()
        assert oncall.description == "People on call"
        flow = session.scalars(select(AccessFlow).where(AccessFlow.name == "engineering-read-pg")).one()
        assert FlowSpec.model_validate(flow.spec).max_duration == "8h"
        actions = session.scalars(select(AuditEvent.action)).all()
        assert actions.count(Action.OBJECT_CREATED.value) == 14
        assert actions.count(Action.CONFIG_APPLIED.value) == 1
        summary = session.scalars(select(AuditEvent).where(AuditEvent.action == Action.CONFIG_APPLIED)).one()
        assert summary.details == {"counts": {"created": 14, "changed": 0, "removed": 0}}
        assert summary.actor == ADMIN

    again = apply_text(any_store, GOOD, NOW + timedelta(minutes=1))
    assert again.is_empty
    assert again.summary() == "no changes"


def test_applying_the_same_file_twice_is_empty_and_writes_nothing(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    before = counts(factory)

    with transaction(factory) as session:
        assert plan_config(session, parse_config(GOOD, "sluice.yaml", session=session)).is_empty
    assert apply_text(factory, GOOD).is_empty
    assert counts(factory) == before


def test_editing_a_flow_reports_it_changed(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    edited = edit(GOOD, "max_duration: 8h", "max_duration: 4h")

    with transaction(factory) as session:
        plan = plan_config(session, parse_config(edited, "sluice.yaml"))
    assert plan.changed == [("flow", "engineering-read-pg")]
    assert plan.notes[plan.changed[0]] == "max_duration"

    applied = apply_text(factory, edited)
    assert applied.changed == [("flow", "engineering-read-pg")]
    with transaction(factory) as session:
        flow = session.scalars(select(AccessFlow).where(AccessFlow.name == "engineering-read-pg")).one()
        assert flow.spec["max_duration"] == "4h"
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == Action.OBJECT_CHANGED)).one()
        assert event.details == {"kind": "flow", "name": "engineering-read-pg", "changed": ["max_duration"]}


def test_removing_an_identity_deactivates_it_and_drops_only_its_config_memberships(
    factory: sessionmaker[Session],
) -> None:
    apply_text(factory, GOOD)
    with transaction(factory) as session:
        bob = session.scalars(select(Identity).where(Identity.email == "bob@example.com")).one()
        leads = session.scalars(select(Group).where(Group.name == "leads")).one()
        session.add(GroupMember(group_id=leads.id, identity_id=bob.id, source="grant:gr_0123456789ab"))

    without_bob = edit(
        GOOD,
        "  - email: bob@example.com\n    name: Bob Example\n    manager: carol@example.com\n"
        "    groups: [engineering, oncall]\n",
        "",
    )
    plan = apply_text(factory, without_bob)

    assert set(plan.removed) == {
        ("identity", "bob@example.com"),
        ("membership", "engineering/bob@example.com"),
        ("membership", "oncall/bob@example.com"),
    }
    assert plan.notes[("identity", "bob@example.com")] == "deactivated"
    with transaction(factory) as session:
        bob = session.scalars(select(Identity).where(Identity.email == "bob@example.com")).one()
        assert bob.active is False
        sources = session.scalars(select(GroupMember.source).where(GroupMember.identity_id == bob.id)).all()
        assert sources == ["grant:gr_0123456789ab"]
    assert apply_text(factory, without_bob).is_empty


def test_removed_groups_and_flows_are_deleted(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    smaller = edit(GOOD, "    groups: [leads]\n", "")
    smaller = smaller[: smaller.index("  - name: oncall-membership")]
    smaller = edit(smaller, "groups: [{name: oncall, description: People on call}]", "groups: []")
    smaller = edit(smaller, "groups: [engineering, oncall]", "groups: [engineering]")

    plan = apply_text(factory, smaller)

    assert set(plan.removed) == {
        ("group", "leads"),
        ("group", "oncall"),
        ("membership", "leads/carol@example.com"),
        ("membership", "oncall/bob@example.com"),
        ("flow", "oncall-membership"),
    }
    with transaction(factory) as session:
        assert set(session.scalars(select(Group.name))) == {"engineering"}
        assert set(session.scalars(select(AccessFlow.name))) == {"engineering-read-pg"}
        removed = session.scalars(select(AuditEvent).where(AuditEvent.action == Action.OBJECT_REMOVED)).all()
        assert len(removed) == 5


def test_a_group_with_temporary_members_stays_until_they_end(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    with transaction(factory) as session:
        alice = session.scalars(select(Identity).where(Identity.email == "alice@example.com")).one()
        leads = session.scalars(select(Group).where(Group.name == "leads")).one()
        session.add(GroupMember(group_id=leads.id, identity_id=alice.id, source="grant:gr_0123456789ab"))
    without_leads = edit(GOOD, "    groups: [leads]\n", "")
    without_leads = without_leads[: without_leads.index("  - name: oncall-membership")]

    plan = apply_text(factory, without_leads)

    assert ("group", "leads") not in plan.removed
    assert ("membership", "leads/carol@example.com") in plan.removed
    assert any("'leads'" in warning for warning in plan.warnings)
    with transaction(factory) as session:
        assert session.scalars(select(Group).where(Group.name == "leads")).one_or_none() is not None


def test_objects_from_other_sources_are_never_removed(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        session.add(Group(id="grp_scim", name="sre", source="scim"))
        session.add(
            Identity(id="id_scim", email="dave@example.com", source="scim", created_at=NOW, updated_at=NOW)
        )
    plan = apply_text(factory, GOOD)
    assert plan.removed == []
    with transaction(factory) as session:
        assert session.get(Group, "grp_scim") is not None
        dave = session.get(Identity, "id_scim")
        assert dave is not None and dave.active


# --- refusing ---------------------------------------------------------------------------------------


def _live_grant(session: Session, integration: str) -> None:
    row = session.scalars(select(Integration).where(Integration.name == integration)).one()
    alice = session.scalars(select(Identity).where(Identity.email == "alice@example.com")).one()
    session.add(
        Grant(
            id="gr_0123456789ab",
            identity_id=alice.id,
            integration_id=row.id,
            resource_path="local-pg/sluice_demo/public/orders",
            resource_type="table",
            permission="read",
            desired="active",
            actual="active",
            duration_seconds=3600,
            principal="sluice_gr_0123456789ab",
            starts_at=NOW,
            ends_at=NOW + timedelta(hours=1),
            created_at=NOW,
            updated_at=NOW,
        )
    )


def test_an_integration_with_live_grants_cannot_be_removed(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    with transaction(factory) as session:
        _live_grant(session, "local-pg")
    before = counts(factory)
    without_pg = edit(
        GOOD,
        "  - name: local-pg\n    kind: postgresql\n    owner: carol@example.com\n    sync_interval: 10m\n"
        "    config:\n      url: {env: SLUICE_DEMO_POSTGRES_URL}\n      databases: [sluice_demo]\n",
        "",
    )
    without_pg = (
        without_pg[: without_pg.index("  - name: engineering-read-pg")]
        + without_pg[without_pg.index("  - name: oncall-membership") :]
    )
    without_pg = edit(
        without_pg, "  - email: alice@example.com", "  - email: alice@example.com\n    active: false"
    )

    with transaction(factory) as session:
        doc = parse_config(without_pg, "sluice.yaml", session=session)
        with pytest.raises(Conflict) as raised:
            apply_config(session, doc, actor=ADMIN, now=NOW)
        # nothing was written, not even in this still-open transaction
        alice = session.scalars(select(Identity).where(Identity.email == "alice@example.com")).one()
        assert alice.active
        assert session.scalar(select(func.count()).select_from(AccessFlow)) == 2
        with pytest.raises(Conflict):
            plan_config(session, doc)
    assert "'local-pg'" in str(raised.value) and "1 live grant" in str(raised.value)
    assert counts(factory) == before


def test_an_unused_integration_is_deleted_but_one_with_grant_history_is_kept(
    factory: sessionmaker[Session],
) -> None:
    apply_text(factory, GOOD)
    with transaction(factory) as session:
        _live_grant(session, "local-pg")
        grant = session.get(Grant, "gr_0123456789ab")
        assert grant is not None
        grant.desired, grant.actual = "revoked", "revoked"
        groups = session.scalars(select(Integration).where(Integration.name == "groups")).one()
        session.add(
            Resource(
                id="res_oncall",
                integration_id=groups.id,
                type="group",
                name="oncall",
                path="groups/oncall",
                discovered_at=NOW,
                updated_at=NOW,
            )
        )
    without_groups = GOOD[: GOOD.index("  - name: groups\n")] + GOOD[GOOD.index("flows:") :]
    without_groups = without_groups[: without_groups.index("  - name: oncall-membership")]
    plan = apply_text(factory, without_groups)
    assert ("integration", "groups") in plan.removed
    with transaction(factory) as session:
        assert session.scalars(select(Integration.name)).all() == ["local-pg"]
        assert session.get(Resource, "res_oncall") is None

    without_pg = without_groups[: without_groups.index("  - name: local-pg")] + "flows: []\n"
    with pytest.raises(Conflict, match="1 ended grant"):
        apply_text(factory, without_pg)


def test_nothing_is_applied_when_the_document_has_an_error(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD)
    before = counts(factory)
    doc = ConfigDocument.model_validate(
        {
            "identities": [
                {"email": "alice@example.com", "name": "Renamed", "manager": "nobody@example.com"}
            ],
            "flows": [],
        }
    )
    with transaction(factory) as session, pytest.raises(ConfigError) as raised:
        apply_config(session, doc, actor=ADMIN, now=NOW)
    assert str(raised.value) == (
        "<config>: identities[0].manager: "
        "manager 'nobody@example.com' is not an identity in this file or in Sluice"
    )
    assert counts(factory) == before
    with transaction(factory) as session:
        alice = session.scalars(select(Identity).where(Identity.email == "alice@example.com")).one()
        assert alice.name == "Alice Example"


def test_references_may_name_objects_sluice_already_has(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        session.add(Group(id="grp_scim", name="sre", source="scim"))
    text = edit(GOOD, "requesters: [{group: leads}]", "requesters: [{group: sre}]")

    with pytest.raises(ConfigError, match="group 'sre' is not known in this file"):
        parse_config(text, "sluice.yaml")
    with transaction(factory) as session:
        parse_config(text, "sluice.yaml", session=session)
