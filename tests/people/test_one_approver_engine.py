"""One approver engine: explain, deciding, revoking and extending all ask `services.approvals` who may
act, so a flow written with `approval:` (owners, shifts, N-of-M, tiers) is understood everywhere."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sluice.domain.errors import NotAllowed
from sluice.services.grants.extensions import extend_grant
from sluice.services.grants.revocation import revoke_grant, revoke_request
from sluice.services.requests.explain import explain
from sluice.store.db import transaction
from tests.people.conftest import People, email
from tests.people.test_approvals import decide

TARGET = [{"integration": "groups", "type": "group", "permissions": ["member"]}]


def owners_flow(people: People, **extra: Any) -> None:
    people.flow(
        {
            "name": "owners",
            "requesters": [{"group": "engineering"}],
            "targets": TARGET,
            "max_duration": "8h",
            "approval": {"groups": [{"approvers": [{"integration_owner": True}]}]},
            **extra,
        }
    )


def explained_approvers(people: People, stem: str, resource: str = "groups/oncall") -> dict[str, list[str]]:
    with transaction(people.factory) as session:
        result = explain(
            session, email=email(stem), resource=resource, permission="member", now=people.clock()
        )
        return {f.flow: f.approvers for f in result.flows if f.allowed}


def test_explain_names_the_approvers_of_a_flow_written_with_approval(people: People) -> None:
    owners_flow(people)
    assert explained_approvers(people, "alice") == {"owners": [email("gina")]}


def test_explain_names_shift_and_n_of_m_approvers_and_leaves_out_the_requester(people: People) -> None:
    people.schedule({"name": "dba-oncall", "members": [email("erin")], "rotation": "7d"})
    people.flow(
        {
            "name": "dba",
            "requesters": [{"group": "dba"}],
            "targets": TARGET,
            "max_duration": "8h",
            "approval": {
                "mode": "all_of",
                "groups": [
                    {"approvers": [{"group": "dba"}], "count": 2},
                    {"approvers": [{"shift": "dba-oncall"}]},
                ],
            },
        }
    )
    assert explained_approvers(people, "dave") == {"dba": [email("erin"), email("frank")]}


def _granted(people: People) -> str:
    request_id = people.submit("alice")
    assert decide(people, request_id, "gina") == "approved"
    people.worker().run_once()
    (grant,) = people.grants_of("alice")
    return grant.id


def test_an_integration_owner_who_approves_may_also_revoke(people: People) -> None:
    owners_flow(people)
    grant_id = _granted(people)
    with transaction(people.factory) as session:
        revoked = revoke_grant(
            session,
            grant_id=grant_id,
            actor=people.identity(session, "gina"),
            is_admin=False,
            reason="incident closed",
            now=people.clock(),
        )
        assert revoked.desired == "revoked"


def test_an_integration_owner_may_revoke_a_whole_request_and_others_may_not(people: People) -> None:
    owners_flow(people)
    grant_id = _granted(people)
    with transaction(people.factory) as session:
        request_id = people.grants_of("alice")[0].request_id
        assert request_id is not None
        with pytest.raises(NotAllowed, match="an approver of its flow"):
            revoke_grant(
                session,
                grant_id=grant_id,
                actor=people.identity(session, "dave"),
                is_admin=False,
                reason="",
                now=people.clock(),
            )
        revoke_request(
            session,
            request_id=request_id,
            actor=people.identity(session, "gina"),
            is_admin=False,
            reason="done",
            now=people.clock(),
        )


def test_an_integration_owner_extends_and_revokes_alike(people: People) -> None:
    owners_flow(
        people, extensions={"max_count": 1, "length": "1h", "ceiling": "4h", "approval_required": True}
    )
    grant_id = _granted(people)
    with transaction(people.factory) as session:
        gina = people.identity(session, "gina")
        extend_grant(
            session,
            grant_id=grant_id,
            actor=gina,
            is_admin=False,
            by=timedelta(minutes=30),
            reason="still needed",
            now=people.clock(),
        )
        revoke_grant(session, grant_id=grant_id, actor=gina, is_admin=False, reason="", now=people.clock())
