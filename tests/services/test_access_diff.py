"""The access diff of `sluice plan`: computed by the services that decide for real, it agrees with what
people may request after `sluice apply` (SQLite and PostgreSQL, and over random flow changes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from sluice.connectors.base import DiscoveredResource
from sluice.services.config.access_diff import access_diff, access_of, diff_as_dict
from sluice.services.config.affected import PolicyState, affected_people, changed_flows
from sluice.services.config.apply import apply_config
from sluice.services.config.file import parse_config
from sluice.services.config.plan import Plan, PlanEntry
from sluice.services.grants.reevaluate import reevaluate
from sluice.services.requests.approvals import approvers_of_request
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.policy import find_flow
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import apply_discovery
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import AccessRequest, Base, Identity, Integration
from tests.conftest import Clock
from tests.services.config_samples import GOOD, edit

TABLES = ("orders", "customers", "invoices", "events")
READERS = """\
  - name: engineering-read-pg
    requesters: [{group: engineering}]
    targets:
      - integration: local-pg
        type: table
        permissions: [read]
    approvers: [{manager: true}]
    max_duration: 8h
"""


def flows_for(excluded: list[str], automatic: bool, group: str) -> str:
    approvers = "" if automatic else "    approvers: [{manager: true}]\n"
    exclude = f"        select: {{exclude: {{names: [{', '.join(excluded)}]}}}}\n" if excluded else ""
    return (
        "  - name: engineering-read-pg\n"
        f"    requesters: [{{group: {group}}}]\n"
        "    targets:\n"
        "      - integration: local-pg\n"
        "        type: table\n"
        f"{exclude}"
        "        permissions: [read]\n"
        f"{approvers}"
        "    max_duration: 8h\n"
    )


def seeded(url: str, clock: Clock) -> sessionmaker[Session]:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        apply_config(session, parse_config(GOOD, "sluice.yaml"), actor="t", now=clock())
        pg = session.query(Integration).filter_by(name="local-pg").one()
        found = [DiscoveredResource("database", "app", "local-pg/app")]
        found += [DiscoveredResource("schema", "public", "local-pg/app/public", "local-pg/app")]
        found += [
            DiscoveredResource("table", t, f"local-pg/app/public/{t}", "local-pg/app/public") for t in TABLES
        ]
        apply_discovery(session, pg, found, clock())
    return factory


def requestable_now(factory: sessionmaker[Session], clock: Clock) -> dict[str, dict[tuple[str, str], bool]]:
    with transaction(factory) as session:
        people = session.query(Identity).filter_by(active=True).all()
        return {p.email: access_of(session, p, clock()) for p in people}


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[sessionmaker[Session]]:
    factory = seeded(store_url, clock)
    yield factory
    factory.kw["bind"].dispose()


def test_the_diff_names_gains_losses_automatic_access_and_grants_that_end(
    store: sessionmaker[Session], clock: Clock
) -> None:
    with transaction(store) as session:  # alice holds read on customers, approved by her manager
        alice, carol = (
            identity_by_email(session, "alice@example.com"),
            identity_by_email(session, "carol@example.com"),
        )
        assert alice is not None and carol is not None
        request = submit_request(
            session,
            hub=ConnectorHub(store),
            requester=alice,
            units=[UnitAsked("local-pg/app/public/customers", "read")],
            duration=timedelta(hours=1),
            reason="ticket 9",
            now=clock(),
        )
        approve_request(session, request_id=request.id, approver=carol, reason="ok", now=clock())
    changed = edit(
        GOOD, READERS, flows_for(["local-pg/app/public/customers"], automatic=True, group="engineering")
    )
    before = requestable_now(store, clock)
    with transaction(store) as session:
        diff = access_diff(session, parse_config(changed, "sluice.yaml", session=session), now=clock())
    assert requestable_now(store, clock) == before, "planning changed the store"
    by_email = {p.email: p for p in diff.people}
    assert by_email["alice@example.com"].no_longer == [("local-pg/app/public/customers", "read")]
    assert ("local-pg/app/public/orders", "read") in by_email["alice@example.com"].now_automatic
    assert [g["resource"] for g in diff.grants_ended] == ["local-pg/app/public/customers"]
    assert "carol@example.com" not in by_email  # not in engineering: nothing changes for her
    with transaction(store) as session:
        apply_config(session, parse_config(changed, "sluice.yaml", session=session), actor="t", now=clock())
    after = requestable_now(store, clock)
    for person in diff.people:
        expected = dict(before[person.email])
        for unit in person.no_longer:
            expected.pop(unit)
        for unit in person.may_newly:
            expected[unit] = True  # refined below from `after`; only membership is checked here
        assert set(after[person.email]) == set(expected)
    with transaction(store) as session:  # what the worker's people pass does after the apply
        ended = reevaluate(session, now=clock(), identity_ids=None).revoked
    assert ended == [g["id"] for g in diff.grants_ended]


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(
    excluded=st.lists(st.sampled_from(TABLES), unique=True, max_size=3),
    automatic=st.booleans(),
    group=st.sampled_from(["engineering", "oncall", "leads"]),
)
def test_after_apply_people_may_request_exactly_what_the_diff_said(
    tmp_path_factory: pytest.TempPathFactory, excluded: list[str], automatic: bool, group: str
) -> None:
    clock = Clock()
    factory = seeded(f"sqlite:///{tmp_path_factory.mktemp('diff') / 'store.db'}", clock)
    changed = edit(GOOD, READERS, flows_for([f"local-pg/app/public/{t}" for t in excluded], automatic, group))
    before = requestable_now(factory, clock)
    with transaction(factory) as session:
        diff = access_diff(session, parse_config(changed, "sluice.yaml", session=session), now=clock())
        apply_config(session, parse_config(changed, "sluice.yaml", session=session), actor="t", now=clock())
    after = requestable_now(factory, clock)
    said = {p.email: p for p in diff.people}
    for email in set(before) | set(after):
        person = said.get(email)
        expected = dict(before.get(email, {}))
        if person is not None:
            for unit in person.no_longer:
                del expected[unit]
            for unit in person.may_newly:
                expected[unit] = after[email][unit]
            for unit in person.now_automatic:
                expected[unit] = True
            for unit in person.no_longer_automatic:
                expected[unit] = False
        assert after.get(email, {}) == expected, email
    factory.kw["bind"].dispose()


def test_only_the_people_a_changed_flow_names_are_computed(
    store: sessionmaker[Session], clock: Clock
) -> None:
    to_oncall = edit(GOOD, READERS, flows_for([], automatic=False, group="oncall"))
    with transaction(store) as session:
        before = PolicyState.read(session, clock())
        savepoint = session.begin_nested()
        plan = apply_config(
            session, parse_config(to_oncall, "sluice.yaml", session=session), actor="t", now=clock()
        )
        after = PolicyState.read(session, clock())
        savepoint.rollback()
        emails = {i: p.email for i, p in before.people.items()}
        assert changed_flows(before, after) == ["engineering-read-pg"]
        affected = affected_people(plan, before, after)
        assert affected is not None
        # engineering (before) and oncall (after): alice and bob, not carol
        assert sorted(emails[i] for i in affected) == ["alice@example.com", "bob@example.com"]
        assert affected_people(Plan(changed=[PlanEntry("integration", "local-pg")]), before, after) is None


@pytest.mark.parametrize("size", [1, 2, 5])
def test_walking_the_catalogue_by_path_gives_what_walking_by_offset_gives(
    store: sessionmaker[Session], clock: Clock, size: int
) -> None:
    """`access_of` walks `requestable` with `after` (each page starts where the last one stopped); the
    pages must hold exactly what offset paging holds, in the same order, with bundles only once."""
    with transaction(store) as session:
        alice = identity_by_email(session, "alice@example.com")
        assert alice is not None
        by_offset: list[tuple[str, str]] = []
        offset: int | None = 0
        while offset is not None:
            page = requestable(
                session, identity=alice, where=RequestableFilter(), limit=size, offset=offset, now=clock()
            )
            by_offset += [(i.resource.path, o.permission) for i in page.items for o in i.options]
            offset = page.next_offset
        by_path: list[tuple[str, str]] = []
        where, pages = RequestableFilter(), 0
        while True:
            page = requestable(session, identity=alice, where=where, limit=size, offset=0, now=clock())
            assert (page.next_after is None) == (page.next_offset is None)
            assert pages == 0 or not page.bundles
            by_path += [(i.resource.path, o.permission) for i in page.items for o in i.options]
            pages += 1
            if page.next_after is None:
                break
            where = RequestableFilter(after=page.next_after)
        assert by_path == by_offset
        assert len(by_path) >= 4  # alice reads every table
        assert set(access_of(session, alice, clock())) == set(by_offset)


def _pending_request_of_alice(store: sessionmaker[Session], clock: Clock) -> str:
    with transaction(store) as session:
        alice = identity_by_email(session, "alice@example.com")
        assert alice is not None
        return submit_request(
            session,
            hub=ConnectorHub(store),
            requester=alice,
            units=[UnitAsked("local-pg/app/public/orders", "read")],
            duration=timedelta(hours=1),
            reason="ticket 10",
            now=clock(),
        ).id


@pytest.mark.parametrize(
    ("old", "new", "newly", "no_longer"),
    [  # the flow's approvers change; then only the directory does (alice's manager)
        (
            "    approvers: [{manager: true}]\n    max_duration: 8h",
            "    approvers: [{user: bob@example.com}]\n    max_duration: 8h",
            ["bob@example.com"],
            ["carol@example.com"],
        ),
        (
            "    manager: carol@example.com\n    groups: [engineering]\n",
            "    manager: bob@example.com\n    groups: [engineering]\n",
            ["bob@example.com"],
            ["carol@example.com"],
        ),
    ],
    ids=["the-flow-approvers-change", "the-requester-manager-changes"],
)
def test_the_diff_names_who_newly_approves_and_who_no_longer_does(
    store: sessionmaker[Session], clock: Clock, old: str, new: str, newly: list[str], no_longer: list[str]
) -> None:
    request_id = _pending_request_of_alice(store, clock)
    changed = edit(GOOD, old, new)
    with transaction(store) as session:
        diff = access_diff(session, parse_config(changed, "sluice.yaml", session=session), now=clock())
    assert [(c.flow, c.resource, c.requester) for c in diff.approvers] == [
        ("engineering-read-pg", "local-pg/app/public/orders", "alice@example.com")
    ]
    assert (diff.approvers[0].newly, diff.approvers[0].no_longer) == (newly, no_longer)
    assert diff_as_dict(diff)["approver_changes"] == [
        {
            "flow": "engineering-read-pg",
            "resource": "local-pg/app/public/orders",
            "requester": "alice@example.com",
            "newly": newly,
            "no_longer": no_longer,
        }
    ]
    with transaction(store) as session:  # after the apply, the request's approvers are what the plan said
        apply_config(session, parse_config(changed, "sluice.yaml", session=session), actor="t", now=clock())
        request = session.get(AccessRequest, request_id)
        assert request is not None
        flow = find_flow(session, request.flow_name)
        assert flow is not None
        assert approvers_of_request(session, request, flow, clock()) == newly


def test_a_change_that_leaves_approvers_alone_reports_none(
    store: sessionmaker[Session], clock: Clock
) -> None:
    _pending_request_of_alice(store, clock)
    changed = edit(GOOD, "    max_duration: 8h", "    max_duration: 4h")
    with transaction(store) as session:
        diff = access_diff(session, parse_config(changed, "sluice.yaml", session=session), now=clock())
    assert diff.approvers == []
