"""For random directories and approval policies, the approvers `explain` names for a resource are
exactly the people who may then decide on the request that person makes for it: each is tried with
a real approval, rolled back. A request nobody may approve is refused when made, and explain then
names nobody. For a request made for someone else, those who may decide are exactly the approvers
it shows and the people whose inbox holds it, and never the requester, the grantee or (when the
flow says so) their direct reports."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from sluice.domain.errors import NotAllowed
from sluice.domain.flows import FlowSpec
from sluice.domain.shifts import ScheduleSpec
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.explain import explain
from sluice.services.requests.reads import RequestScope, list_requests, request_approvers
from sluice.services.requests.submit import UnitAsked, submit_request
from sluice.services.targeting.connector_hub import ConnectorHub
from sluice.services.targeting.inventory import sync_integration
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.people_tables import Schedule
from sluice.store.tables import (
    AccessFlow,
    AccessRequest,
    Base,
    Group,
    GroupMember,
    Identity,
    Integration,
    Resource,
)
from sluice.store.targeting_tables import ResourceTag

NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
STEMS = ("p0", "p1", "p2", "p3", "p4")
GROUPS = ("g0", "g1")
DEPARTMENTS = ("a", "b")
RESOURCE = "groups/oncall"


def email(stem: str) -> str:
    return f"{stem}@example.com"


@dataclass(frozen=True)
class Someone:
    active: bool
    groups: frozenset[str]
    manager: str | None
    department: str


@dataclass(frozen=True)
class Directory:
    people: dict[str, Someone]
    integration_owner: str
    owner_tag: str | None
    on_call: list[str]


@st.composite
def directories(draw: st.DrawFn) -> Directory:
    people = {
        stem: Someone(
            active=draw(st.sampled_from([True, True, True, False])),
            groups=frozenset(draw(st.sets(st.sampled_from(GROUPS)))),
            manager=draw(st.none() | st.sampled_from([s for s in STEMS if s != stem])),
            department=draw(st.sampled_from(DEPARTMENTS)),
        )
        for stem in STEMS
    }
    owners = st.sampled_from([*(email(s) for s in STEMS), *GROUPS])
    return Directory(
        people=people,
        integration_owner=draw(owners | st.just("")),
        owner_tag=draw(st.none() | owners),
        on_call=draw(st.lists(st.sampled_from(STEMS), min_size=1, max_size=2, unique=True)),
    )


APPROVERS = st.one_of(
    st.sampled_from(STEMS).map(lambda s: {"user": email(s)}),
    st.sampled_from(GROUPS).map(lambda g: {"group": g}),
    st.sampled_from(
        [{"manager": True}, {"resource_owner": True}, {"integration_owner": True}, {"shift": "rota"}]
    ),
    st.sampled_from(DEPARTMENTS).map(lambda d: {"condition": {"attribute": "department", "is": d}}),
)
APPROVER_GROUPS = st.lists(
    st.fixed_dictionaries(
        {"approvers": st.lists(APPROVERS, min_size=1, max_size=3), "count": st.integers(1, 2)}
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    self_approval = draw(st.booleans())
    parties = ["direct_reports"] if self_approval else ["requester", "grantee", "direct_reports"]
    policy: dict[str, Any] = {
        "mode": draw(st.sampled_from(["any_of", "all_of"])),
        "groups": draw(APPROVER_GROUPS),
        "self_approval": self_approval,
        "distinct_from": draw(st.lists(st.sampled_from(parties), unique=True)),
    }
    if draw(st.booleans()):
        policy["escalation"] = [{"after": "30m", "groups": draw(APPROVER_GROUPS)}]
    return policy


def build_store(directory: Directory, policy: dict[str, Any]) -> sessionmaker[Session]:
    engine = make_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        groups = {name: Group(id=f"grp_{name}", name=name, source="config") for name in GROUPS}
        session.add_all(groups.values())
        for stem, someone in directory.people.items():
            session.add(
                Identity(
                    id=f"id_{stem}",
                    email=email(stem),
                    name=stem,
                    active=someone.active,
                    manager_email=email(someone.manager) if someone.manager else None,
                    attributes={"department": someone.department},
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
            session.flush()
            for name in sorted(someone.groups):
                session.add(GroupMember(group_id=groups[name].id, identity_id=f"id_{stem}", source="config"))
        session.add(
            Integration(
                id="int_groups",
                name="groups",
                kind="builtin_groups",
                owner=directory.integration_owner or None,
                config={"groups": [{"name": "oncall"}]},
                created_at=NOW,
                updated_at=NOW,
            )
        )
        rota = ScheduleSpec.model_validate(
            {"name": "rota", "members": [email(s) for s in directory.on_call], "rotation": "7d"}
        )
        session.add(
            Schedule(
                id="sch_rota", name="rota", spec=rota.model_dump(mode="json"), created_at=NOW, updated_at=NOW
            )
        )
        flow = FlowSpec.model_validate(
            {
                "name": "f",
                "requesters": [{"attribute": "user", "contains": "@"}],
                "grantees": [{"attribute": "user", "contains": "@"}],
                "targets": [{"integration": "groups", "type": "group", "permissions": ["member"]}],
                "max_duration": "8h",
                "approval": policy,
            }
        )
        session.add(
            AccessFlow(
                id="flw_f", name="f", spec=flow.model_dump(mode="json"), created_at=NOW, updated_at=NOW
            )
        )
    sync_integration(factory, ConnectorHub(factory), "groups", clock=lambda: NOW)
    if directory.owner_tag is not None:
        with transaction(factory) as session:
            resource = session.query(Resource).filter_by(path=RESOURCE).one()
            session.add(
                ResourceTag(
                    resource_id=resource.id,
                    key="owner",
                    value=directory.owner_tag,
                    source="api:x",
                    updated_at=NOW,
                )
            )
    return factory


def may_decide(factory: sessionmaker[Session], request_id: str, stem: str) -> bool:
    """Tries a real approval by `stem`, then rolls it back."""
    with factory() as session:
        try:
            approve_request(
                session,
                request_id=request_id,
                approver=session.get_one(Identity, f"id_{stem}"),
                reason="ok",
                now=NOW,
            )
        except NotAllowed:
            return False
        finally:
            session.rollback()
        return True


def submit(factory: sessionmaker[Session], requester: str, grantee: str) -> str | None:
    """The request `requester` makes for `grantee`, or None when it is refused because nobody may
    approve it."""
    try:
        with transaction(factory) as session:
            return submit_request(
                session,
                hub=ConnectorHub(factory),
                requester=session.get_one(Identity, f"id_{requester}"),
                units=[UnitAsked(RESOURCE, "member")],
                duration=timedelta(hours=1),
                reason="property",
                now=NOW,
                grantee=session.get_one(Identity, f"id_{grantee}"),
            ).id
    except NotAllowed as refused:
        assert "nobody may approve this request" in str(refused)
        event("refused: nobody may approve")
        return None


def in_inbox(factory: sessionmaker[Session], request_id: str, stem: str) -> bool:
    with transaction(factory) as session:
        page = list_requests(
            session,
            viewer=session.get_one(Identity, f"id_{stem}"),
            is_admin=False,
            scope=RequestScope.TO_APPROVE,
            status=None,
            limit=10,
            offset=0,
            now=NOW,
        )
        return request_id in [r.id for r in page.items]


def with_active(directory: Directory, *stems: str) -> Directory:
    people = directory.people | {s: replace(directory.people[s], active=True) for s in stems}
    return replace(directory, people=people)


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(directory=directories(), policy=policies(), requester=st.sampled_from(STEMS))
def test_explain_names_exactly_those_who_may_decide(
    directory: Directory, policy: dict[str, Any], requester: str
) -> None:
    factory = build_store(with_active(directory, requester), policy)
    with transaction(factory) as session:
        result = explain(session, email=email(requester), resource=RESOURCE, permission="member", now=NOW)
        (verdict,) = result.flows
        assert verdict.allowed, verdict.reason
        explained = verdict.approvers
    request_id = submit(factory, requester, requester)
    if request_id is None:
        assert explained == []
        return
    deciders = [email(stem) for stem in STEMS if may_decide(factory, request_id, stem)]
    assert explained == deciders
    event(f"{len(deciders)} may decide")


@PROPERTY
@given(
    directory=directories(),
    policy=policies(),
    requester=st.sampled_from(STEMS),
    grantee=st.sampled_from(STEMS),
)
def test_nobody_decides_on_access_for_themselves_whoever_asked(
    directory: Directory, policy: dict[str, Any], requester: str, grantee: str
) -> None:
    directory = with_active(directory, requester, grantee)
    factory = build_store(directory, policy)
    request_id = submit(factory, requester, grantee)
    if request_id is None:
        return
    deciders = [stem for stem in STEMS if may_decide(factory, request_id, stem)]
    with transaction(factory) as session:
        request = session.get_one(AccessRequest, request_id)
        assert request_approvers(session, request, NOW) == [email(s) for s in deciders]
    assert [s for s in STEMS if s != requester and in_inbox(factory, request_id, s)] == [
        s for s in deciders if s != requester
    ]
    if not policy["self_approval"]:
        assert requester not in deciders and grantee not in deciders
    if "direct_reports" in policy["distinct_from"]:
        assert all(directory.people[s].manager not in (requester, grantee) for s in deciders)
    event(f"{'for someone else' if grantee != requester else 'for oneself'}, {len(deciders)} may decide")
