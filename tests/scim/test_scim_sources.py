"""One directory, many sources: SCIM groups and their members, each source changing only what it owns,
conflicts refused and audited, and SCIM tokens kept apart from API tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sluice.api.app import create_app
from sluice.domain.errors import Conflict
from sluice.runtime.wiring import Runtime
from sluice.services.config.apply import apply_config
from sluice.services.config.file import parse_config
from sluice.services.config.source import ConfigError
from sluice.services.directory.changes import set_identity
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from sluice.store.people_queries import people_snapshot
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AuditEvent, Group, GroupMember, Identity
from tests.scim.conftest import GROUP_SCHEMA, Scim, add_config_identity, patch_body, scim_for, user_body


def _groups_of(scim: Scim, email: str) -> set[str]:
    with transaction(scim.runtime.factory) as session:
        identity = session.scalar(select(Identity).where(Identity.email == email))
        assert identity is not None
        return set(people_snapshot(session, scim.runtime.clock(), [identity.id])[identity.id].groups)


def test_group_members_follow_every_form_of_patch(scim: Scim) -> None:
    ids = [scim.create_user(f"{stem}@example.com")["id"] for stem in ("gil", "hana", "ivo")]
    group = scim.create_group("sre", ids[:1])
    gid = group["id"]
    assert _groups_of(scim, "gil@example.com") == {"sre"}
    answer = scim.call(
        "PATCH",
        f"/Groups/{gid}",
        patch_body({"op": "Add", "path": "members", "value": [{"value": ids[1]}, {"value": ids[2]}]}),
    )
    assert answer.status_code == 200, answer.text
    assert {m["value"] for m in answer.json()["members"]} == set(ids)
    # the form most providers use to remove one member
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f'members[value eq "{ids[0]}"]'}],
    }
    assert scim.call("PATCH", f"/Groups/{gid}", body).status_code == 200
    assert _groups_of(scim, "gil@example.com") == set()
    # and the one some others send: remove with a list of values
    body = patch_body({"op": "Remove", "path": "members", "value": [{"value": ids[1]}]})
    assert scim.call("PATCH", f"/Groups/{gid}", body).status_code == 200
    assert _groups_of(scim, "hana@example.com") == set()
    # Okta renames with a path-less replace
    answer = scim.call(
        "PATCH",
        f"/Groups/{gid}",
        patch_body({"op": "replace", "value": {"id": gid, "displayName": "sre-team"}}),
    )
    assert answer.status_code == 200, answer.text
    assert _groups_of(scim, "ivo@example.com") == {"sre-team"}
    with transaction(scim.runtime.factory) as session:
        reasons = list(session.scalars(select(PeopleChange.reason)))
    assert "scim:okta: gil@example.com left sre" in reasons
    unknown = scim.call(
        "PATCH", f"/Groups/{gid}", patch_body({"op": "add", "path": "members", "value": [{"value": "id_x"}]})
    )
    assert (unknown.status_code, unknown.json()["scimType"]) == (400, "invalidValue")
    assert scim.call("DELETE", f"/Groups/{gid}").status_code == 204
    assert _groups_of(scim, "ivo@example.com") == set()


def test_scim_cannot_take_what_the_config_owns_and_says_so(scim: Scim) -> None:
    add_config_identity(scim.runtime, "carol@example.com")
    answer = scim.call("POST", "/Users", user_body("carol@example.com"))
    assert answer.status_code == 409
    assert answer.json()["scimType"] == "uniqueness"
    assert "owned by the config file" in answer.json()["detail"]
    with transaction(scim.runtime.factory) as session:
        carol = session.scalar(select(Identity).where(Identity.email == "carol@example.com"))
        assert carol is not None and (carol.source, carol.name) == ("config", "Config")
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "directory.conflict"))
        assert event is not None and (event.actor, event.subject_id) == ("scim:okta", "carol@example.com")
        session.add(Group(id="grp_cfg", name="dba", description="", source="config"))
    group = scim.call("POST", "/Groups", {"schemas": [GROUP_SCHEMA], "displayName": "dba"})
    assert (group.status_code, group.json()["scimType"]) == (409, "uniqueness")


def test_config_apply_never_edits_or_deactivates_scim_people(scim: Scim) -> None:
    scim.create_user("dan@example.com")
    scim.create_group("payments", [])
    now = scim.runtime.clock()
    plain = parse_config("identities:\n  - {email: zoe@example.com, groups: [ops]}\n", "sluice.yaml")
    with transaction(scim.runtime.factory) as session:
        apply_config(session, plain, actor="admin", now=now)
    with transaction(scim.runtime.factory) as session:
        dan = session.scalar(select(Identity).where(Identity.email == "dan@example.com"))
        assert dan is not None and (dan.active, dan.source) == (True, "scim:okta")
        assert session.scalar(select(Group).where(Group.name == "payments")) is not None
    taking = parse_config("identities:\n  - {email: dan@example.com, name: Dan}\n", "sluice.yaml")
    with (
        transaction(scim.runtime.factory) as session,
        pytest.raises(Conflict, match="owned by the SCIM source 'okta'"),
    ):
        apply_config(session, taking, actor="admin", now=now)
    grouping = parse_config("groups:\n  - {name: payments}\n", "sluice.yaml")
    with transaction(scim.runtime.factory) as session, pytest.raises(Conflict, match="group 'payments'"):
        apply_config(session, grouping, actor="admin", now=now)
    with (
        transaction(scim.runtime.factory) as session,
        pytest.raises(Conflict, match="change it in the identity"),
    ):
        set_identity(
            session, email="dan@example.com", fields={"active": False}, replace=False, actor="a", now=now
        )


def test_each_source_sees_and_changes_only_its_own(scim: Scim) -> None:
    okta_user = scim.create_user("eli@example.com")
    entra = scim_for(scim.runtime, "entra")
    assert entra.call("GET", "/Users").json()["totalResults"] == 0
    assert entra.call("GET", f"/Users/{okta_user['id']}").status_code == 404
    assert (
        entra.call(
            "PATCH",
            f"/Users/{okta_user['id']}",
            patch_body({"op": "replace", "path": "active", "value": False}),
        ).status_code
        == 404
    )
    taken = entra.call("POST", "/Users", user_body("eli@example.com"))
    assert (taken.status_code, taken.json()["scimType"]) == (409, "uniqueness")
    assert "SCIM source 'okta'" in taken.json()["detail"]
    group = scim.create_group("shared", [okta_user["id"]])
    member = entra.call(
        "POST",
        "/Groups",
        {"schemas": [GROUP_SCHEMA], "displayName": "mine", "members": [{"value": okta_user["id"]}]},
    )
    assert member.status_code == 400
    with transaction(scim.runtime.factory) as session:
        assert (
            session.scalar(select(GroupMember.source).where(GroupMember.group_id == group["id"]))
            == "scim:okta"
        )


def test_scim_and_api_tokens_are_kept_apart(scim: Scim) -> None:
    add_config_identity(scim.runtime, "root@example.com")
    with transaction(scim.runtime.factory) as session:
        api_token = create_token(
            session, email="root@example.com", admin=True, actor="t", now=scim.runtime.clock()
        )
    client = TestClient(create_app(scim.runtime))
    assert (
        client.get("/api/v1/identities", headers={"Authorization": f"Bearer {scim.token}"}).status_code == 401
    )
    refused = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {api_token}"})
    assert refused.status_code == 401
    assert refused.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert client.get("/scim/v2/Users").status_code == 401
    assert scim.call("GET", "/Users").status_code == 200


PAYMENTS_FLOW = """\
identities:
  - {email: carol@example.com, groups: [managers]}
flows:
  - name: payments
    requesters: [{attribute: department, is: payments}]
    targets: [{integration: groups, type: group, permissions: [member]}]
    approvers: [{group: managers}]
    max_duration: 1h
integrations:
  - {name: groups, kind: builtin_groups, config: {groups: [{name: oncall}]}}
"""


def _apply(runtime: Runtime, text: str) -> None:
    with transaction(runtime.factory) as session:
        doc = parse_config(text, "sluice.yaml", session=session)
        apply_config(session, doc, actor="admin", now=runtime.clock())


def test_flows_may_test_scim_attributes_before_anyone_is_pushed(scim: Scim) -> None:
    _apply(scim.runtime, PAYMENTS_FLOW)


def test_without_a_scim_source_an_unknown_attribute_is_still_a_mistake(store_without_scim: Runtime) -> None:
    with pytest.raises(ConfigError, match="unknown attribute 'department'"):
        _apply(store_without_scim, PAYMENTS_FLOW)
