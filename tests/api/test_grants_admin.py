"""`GET /api/v1/grants`: everyone's grants for operators, filtered by state (revoke_failed included),
integration, grantee and resource, paged; admin tokens only."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from sluice.domain.states import Actual, Desired, GrantState, grant_state
from sluice.services.requests import reads
from sluice.store.db import transaction
from sluice.store.tables import Grant, Identity, Integration
from sluice.store.types import new_id
from tests.api.conftest import Api, email, problem
from tests.api.grant_fixtures import mixed_grants


@pytest.fixture
def mixed(any_store_api: Api) -> dict[str, str]:
    return mixed_grants(any_store_api)


def _ids(api: Api, **params: object) -> list[str]:
    response = api.get("root", "/grants", **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] >= len(body["items"])
    return [item["id"] for item in body["items"]]


def test_revoke_failed_grants_are_listed_with_why(any_store_api: Api, mixed: dict[str, str]) -> None:
    response = any_store_api.get("root", "/grants", state="revoke_failed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    (item,) = body["items"]
    assert item["id"] == mixed["stuck"]
    assert item["state"] == "revoke_failed"
    assert item["grantee"] == email("carol")
    assert item["resource"] == "dead-pg/app/public/orders"
    assert item["permission"] == "read"
    assert item["attempts"] == 1
    assert item["last_error"]
    assert item["failing_since"] is not None and item["revoke_failed_at"] is not None
    assert item["ends_at"] is not None


def test_filters_narrow_the_list(any_store_api: Api, mixed: dict[str, str]) -> None:
    api = any_store_api
    assert set(_ids(api)) == set(mixed.values())
    assert _ids(api, state="active") == [mixed["active"]]
    assert _ids(api, state="pending") == [mixed["pending"]]
    assert _ids(api, state="revoking") == []
    assert _ids(api, integration="dead-pg") == [mixed["stuck"]]
    assert _ids(api, integration="dead-pg", state="active") == []
    assert _ids(api, identity="ALICE@example.com") == [mixed["active"]]
    assert _ids(api, identity="nobody@example.com") == []
    assert set(_ids(api, resource="groups/")) == {mixed["active"], mixed["pending"]}
    assert _ids(api, resource="groups/dba") == [mixed["pending"]]
    assert _ids(api, resource="groups/%") == []  # a prefix, not a pattern


def test_ended_grants_are_listed_on_demand(any_store_api: Api, mixed: dict[str, str]) -> None:
    api = any_store_api
    assert api.post("alice", f"/access/{mixed['active']}/revoke").status_code == 200
    api.work()
    assert mixed["active"] not in _ids(api)
    assert mixed["active"] in _ids(api, include_ended="true")
    assert _ids(api, state="revoked") == [mixed["active"]]


def test_pages_follow_limit_and_offset(any_store_api: Api, mixed: dict[str, str]) -> None:
    api = any_store_api
    everything = _ids(api)
    pages = [_ids(api, limit=1, offset=n) for n in range(4)]
    assert [i for page in pages for i in page] == everything
    assert api.get("root", "/grants", limit=1).json()["total"] == 3
    problem(api.get("root", "/grants", limit=0), 422)
    problem(api.get("root", "/grants", offset=-1), 422)


def test_an_unknown_state_is_a_422_naming_the_valid_ones(api: Api) -> None:
    body = problem(api.get("root", "/grants", state="stuck"), 422)
    assert body["errors"][0]["location"] == "query.state"
    for state in GrantState:
        assert f"'{state.value}'" in body["detail"]


def test_only_admins_list_everyones_grants(api: Api) -> None:
    body = problem(api.get("alice", "/grants"), 403)
    assert "admin" in body["detail"]
    problem(api.client.get("/api/v1/grants"), 401)


def test_the_sql_state_filter_agrees_with_the_domain_rule(api: Api) -> None:
    """Every (desired, actual, revoke_failed) combination lands in exactly the state `grant_state` names."""
    now = api.clock()
    expected: dict[GrantState, set[str]] = {state: set() for state in GrantState}
    with transaction(api.runtime.factory) as session:
        alice = session.scalars(select(Identity).where(Identity.email == email("alice"))).one()
        groups = session.scalars(select(Integration).where(Integration.name == "groups")).one()
        for desired, actual, failed in itertools.product(Desired, Actual, (False, True)):
            grant_id = new_id("gr")
            session.add(
                Grant(
                    id=grant_id,
                    identity_id=alice.id,
                    integration_id=groups.id,
                    resource_path="groups/oncall",
                    resource_type="group",
                    permission="member",
                    desired=desired,
                    actual=actual,
                    duration_seconds=60,
                    principal=email("alice"),
                    revoke_failed_at=now if failed else None,
                    created_at=now,
                    updated_at=now,
                )
            )
            expected[grant_state(desired, actual, revoke_failed=failed)].add(grant_id)
    with transaction(api.runtime.factory) as session:
        for state in GrantState:
            page = reads.list_grants(session, where=reads.GrantFilter(state=state), limit=500, offset=0)
            assert {g.id for g in page.items} == expected[state], state
