"""SCIM users as identity providers really send them: Entra's capitalised ops, string booleans and
colon paths, Okta's path-less replace, the enterprise extension, filters and pages, and the errors."""

from __future__ import annotations

from sqlalchemy import select

from sluice.domain.people import Subject, holds
from sluice.store.db import transaction
from sluice.store.people_queries import people_snapshot
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import AuditEvent, Identity
from tests.scim.conftest import ENTERPRISE, ERROR_SCHEMA, SCIM_JSON, Scim, patch_body


def _identity(scim: Scim, email: str) -> Identity:
    with transaction(scim.runtime.factory) as session:
        row = session.scalar(select(Identity).where(Identity.email == email))
        assert row is not None
        session.expunge(row)
        return row


def _queued(scim: Scim) -> list[str]:
    with transaction(scim.runtime.factory) as session:
        return list(session.scalars(select(PeopleChange.reason).order_by(PeopleChange.id)))


def test_entra_deactivates_with_a_capitalised_op_and_a_string_boolean(scim: Scim) -> None:
    user = scim.create_user("ana@example.com")
    assert _identity(scim, "ana@example.com").source == "scim:okta"
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    answer = scim.call("PATCH", f"/Users/{user['id']}", body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(SCIM_JSON)
    assert answer.json()["active"] is False
    assert _identity(scim, "ana@example.com").active is False
    assert _queued(scim)[-1] == "scim:okta active ana@example.com"
    with transaction(scim.runtime.factory) as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert event is not None
        assert (event.actor, event.action, event.details["changed"]) == (
            "scim:okta",
            "admin.changed",
            ["active"],
        )


def test_okta_deactivates_with_a_pathless_replace(scim: Scim) -> None:
    user = scim.create_user("ben@example.com")
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    assert scim.call("PATCH", f"/Users/{user['id']}", body).status_code == 200
    assert _identity(scim, "ben@example.com").active is False
    back = patch_body({"op": "REPLACE", "value": {"active": "True"}})
    assert scim.call("PATCH", f"/Users/{user['id']}", back).status_code == 200
    assert _identity(scim, "ben@example.com").active is True


def test_enterprise_extension_sets_manager_and_attributes_that_flows_can_test(scim: Scim) -> None:
    boss = scim.create_user("boss@example.com")
    user = scim.create_user(
        "cleo@example.com", **{ENTERPRISE: {"department": "payments", "employeeNumber": "701"}}
    )
    # Entra names the manager with a colon path and gives a bare id
    body = patch_body(
        {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss["id"]},
        {"op": "Replace", "path": f"{ENTERPRISE}:costCenter", "value": "cc-9"},
    )
    answer = scim.call("PATCH", f"/Users/{user['id']}", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()[ENTERPRISE]["manager"]["value"] == boss["id"]
    cleo = _identity(scim, "cleo@example.com")
    assert cleo.manager_email == "boss@example.com"
    assert cleo.attributes == {"department": "payments", "employeeNumber": "701", "costCenter": "cc-9"}
    with transaction(scim.runtime.factory) as session:
        person = people_snapshot(session, scim.runtime.clock(), [cleo.id])[cleo.id]
    assert holds(Subject.model_validate({"attribute": "department", "is": "payments"}), person)
    assert holds(Subject.model_validate({"attribute": "manager", "is": "boss@example.com"}), person)
    assert not holds(Subject.model_validate({"attribute": "department", "is": "platform"}), person)


def test_entra_adds_a_work_email_by_a_filtered_path(scim: Scim) -> None:
    user = scim.create_user("dora", emails=[])
    assert _identity(scim, "dora@okta.scim.invalid").active
    body = patch_body({"op": "Add", "path": 'emails[type eq "work"].value', "value": "dora@example.com"})
    answer = scim.call("PATCH", f"/Users/{user['id']}", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["emails"] == [{"value": "dora@example.com", "type": "work"}]
    assert _identity(scim, "dora@example.com").id == user["id"]


def test_filters_and_pages(scim: Scim) -> None:
    for stem in ("amy", "anna", "bob", "carl"):
        scim.create_user(f"{stem}@example.com", title="engineer" if stem != "carl" else None)

    def names(**params: object) -> list[str]:
        answer = scim.call("GET", "/Users", **params)
        assert answer.status_code == 200, answer.text
        return [r["userName"] for r in answer.json().get("Resources", [])]

    assert names(filter='userName eq "BOB@example.com"') == ["bob@example.com"]
    assert names(filter='userName sw "a"') == ["amy@example.com", "anna@example.com"]
    assert names(filter='userName co "nn"') == ["anna@example.com"]
    assert names(filter='userName sw "a" and userName co "my"') == ["amy@example.com"]
    assert names(filter='userName eq "bob@example.com" or userName eq "carl@example.com"') == [
        "bob@example.com",
        "carl@example.com",
    ]
    assert names(filter="title pr") == ["amy@example.com", "anna@example.com", "bob@example.com"]
    page = scim.call("GET", "/Users", startIndex=2, count=2).json()
    assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (4, 2, 2)
    assert [r["userName"] for r in page["Resources"]] == ["anna@example.com", "bob@example.com"]


def test_errors_are_scim_errors(scim: Scim) -> None:
    missing = scim.call("GET", "/Users/id_nobody")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(SCIM_JSON)
    assert missing.json()["schemas"] == [ERROR_SCHEMA]
    assert missing.json()["status"] == "404"
    bad_filter = scim.call("GET", "/Users", filter="userName eq")
    assert (bad_filter.status_code, bad_filter.json()["scimType"]) == (400, "invalidFilter")
    user = scim.create_user("eve@example.com")
    bad_op = scim.call(
        "PATCH", f"/Users/{user['id']}", patch_body({"op": "frob", "path": "title", "value": "x"})
    )
    assert (bad_op.status_code, bad_op.json()["status"]) == (400, "400")
    again = scim.call("POST", "/Users", {"schemas": [user["schemas"][0]], "userName": "EVE@example.com"})
    assert (again.status_code, again.json()["scimType"]) == (409, "uniqueness")
    not_json = scim.client.post(
        "/scim/v2/Users", content=b"{", headers={"Authorization": f"Bearer {scim.token}"}
    )
    assert (not_json.status_code, not_json.json()["scimType"]) == (400, "invalidSyntax")


def test_delete_deactivates_and_a_new_post_brings_the_person_back(scim: Scim) -> None:
    user = scim.create_user("finn@example.com")
    assert scim.call("DELETE", f"/Users/{user['id']}").status_code == 204
    assert scim.call("GET", f"/Users/{user['id']}").status_code == 404
    assert _identity(scim, "finn@example.com").active is False
    again = scim.create_user("finn@example.com")
    assert again["id"] == user["id"]
    assert _identity(scim, "finn@example.com").active is True
