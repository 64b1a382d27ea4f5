"""Service accounts: created and disabled by admins, their tokens made by an admin within the account's
role, never approving, never signing in; every token of a disabled account or deactivated person stops
at once."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from sluice.domain.errors import NotAllowed
from sluice.domain.flows import FlowSpec
from sluice.services.directory.changes import set_group
from sluice.services.directory.service_accounts import service_account
from sluice.services.requests.approvals import approvers_of_request, refuse_without_approver
from sluice.services.requests.decisions import approve_request
from sluice.services.requests.policy import load_flow
from sluice.services.signin.id_tokens import SignInRefused
from sluice.services.signin.people import person_for_claims
from sluice.services.signin.settings import SignInSettings
from sluice.store.db import transaction
from sluice.store.queries import identity_by_email
from sluice.store.tables import AccessRequest, Resource
from tests.api.conftest import ONCALL_FLOW, Api, email, problem

BOT = "ci-bot"
BOT_EMAIL = "ci-bot@service-accounts.invalid"


def make_bot(api: Api, role: str = "user") -> dict[str, object]:
    answer = api.post("root", "/service-accounts", {"name": BOT, "description": "CI deploys", "role": role})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def bot_token(api: Api, *scopes: str, name: str = "deploy") -> httpx.Response:
    return api.post("root", f"/service-accounts/{BOT}/tokens", {"name": name, "scopes": list(scopes)})


def me(api: Api, secret: str) -> httpx.Response:
    return api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def test_an_admin_creates_a_service_account_and_its_token(api: Api) -> None:
    made = make_bot(api)
    assert (made["email"], made["owner"], made["active"]) == (BOT_EMAIL, email("root"), True)
    answer = bot_token(api, "read", "request")
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    secret = answer.json()["token"]
    assert me(api, secret).json()["email"] == BOT_EMAIL
    listed = api.get("root", "/service-accounts").json()
    assert [a["name"] for a in listed["items"]] == [BOT]
    assert [t["name"] for t in api.get("root", "/tokens", owner=BOT_EMAIL).json()["items"]] == ["deploy"]
    # its own tokens come from an admin only
    own = api.client.post(
        "/api/v1/tokens", json={"name": "self"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert "made by an admin" in problem(own, 403)["detail"]


@pytest.mark.parametrize("who", ["alice", "bob", "carol", "dave"])
def test_only_admins_manage_service_accounts(api: Api, who: str) -> None:
    make_bot(api)
    problem(api.get(who, "/service-accounts"), 403)
    problem(api.post(who, "/service-accounts", {"name": "mine"}), 403)
    problem(api.post(who, f"/service-accounts/{BOT}/tokens", {"name": "x"}), 403)
    problem(api.post(who, f"/service-accounts/{BOT}/disable"), 403)


def test_a_service_account_never_approves(api: Api) -> None:
    make_bot(api, role="admin")
    assert "never approves" in problem(bot_token(api, "approve"), 403)["detail"]
    assert bot_token(api, "admin", name="admin").status_code == 201  # an admin-role account may admin
    request = api.ask("alice")
    with transaction(api.runtime.factory) as session:
        bot = service_account(session, BOT).identity
        with pytest.raises(NotAllowed, match="service account"):
            approve_request(session, request_id=request["id"], approver=bot, reason="", now=api.clock())


def test_a_service_account_cannot_sign_in(api: Api) -> None:
    make_bot(api)
    settings = SignInSettings(issuer="https://idp.example", client_id="sluice", client_secret="s")
    with transaction(api.runtime.factory) as session, pytest.raises(SignInRefused, match="service account"):
        person_for_claims(session, settings, {"email": BOT_EMAIL, "email_verified": True}, now=api.clock())


def test_scopes_stay_within_the_accounts_role(api: Api) -> None:
    make_bot(api, role="user")
    assert "beyond the owner's role user" in problem(bot_token(api, "admin"), 403)["detail"]


def test_disabling_an_account_stops_its_tokens_at_once(api: Api) -> None:
    make_bot(api)
    secret = bot_token(api, "read").json()["token"]
    assert me(api, secret).status_code == 200
    disabled = api.post("root", f"/service-accounts/{BOT}/disable")
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert "not active" in problem(me(api, secret), 401)["detail"]
    assert "disabled" in problem(bot_token(api, "read", name="again"), 409)["detail"]
    assert problem(api.post("root", "/service-accounts", {"name": BOT}), 409)


def test_a_deactivated_persons_tokens_stop_at_once(api: Api) -> None:
    secret = api.post("alice", "/tokens", {"name": "laptop"}).json()["token"]
    assert me(api, secret).status_code == 200
    off = api.client.patch(
        f"/api/v1/identities/{email('alice')}", json={"active": False}, headers=api.auth("root")
    )
    assert off.status_code == 200, off.text
    assert "not active" in problem(me(api, secret), 401)["detail"]
    assert "not active" in problem(me(api, api.tokens["alice"]), 401)["detail"]  # the bootstrap one too


def test_bad_service_account_names_are_422(api: Api) -> None:
    for name in ("", "Upper", "-lead", "has space", "x" * 64):
        problem(api.post("root", "/service-accounts", {"name": name}), 422)
    problem(api.post("root", "/service-accounts", {"name": "ok", "role": "king"}), 422)


def test_a_service_account_in_an_approver_group_is_never_asked_and_never_counts_as_an_approver(
    api: Api,
) -> None:
    make_bot(api)
    request = api.ask("alice")
    with transaction(api.runtime.factory) as session:
        set_group(
            session, name="leads", description=None, members=None, add=[BOT_EMAIL], remove=[], actor="root",
            now=api.clock(),
        )  # fmt: skip
    with transaction(api.runtime.factory) as session:
        asked = session.get(AccessRequest, request["id"])
        assert asked is not None
        flow = load_flow(session, asked.flow_name)
        assert approvers_of_request(session, asked, flow, api.clock()) == [email("bob"), email("carol")]
        # A flow whose only approver is the service account would leave every request waiting for
        # nobody: it is refused when asked, saying why.
        only_bot = FlowSpec.model_validate(
            ONCALL_FLOW.model_dump() | {"name": "bot-approves", "approvers": [{"user": BOT_EMAIL}]}
        )
        alice = identity_by_email(session, email("alice"))
        assert alice is not None
        resource = session.scalar(select(Resource.id).where(Resource.path == "groups/oncall"))
        assert resource is not None
        with pytest.raises(NotAllowed, match=f"{BOT_EMAIL}: service accounts never approve"):
            refuse_without_approver(
                session, only_bot, requester=alice, grantee=alice, resource_ids=[resource], now=api.clock()
            )
