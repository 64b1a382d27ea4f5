"""A person an identity provider deactivates through SCIM loses every API token at once: the store-side
bootstrap one and the named ones they made themselves."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sluice.api.app import create_app
from sluice.services.directory.tokens import create_token
from sluice.store.db import transaction
from tests.scim.conftest import Scim, patch_body


def test_scim_deactivation_stops_every_token(scim: Scim) -> None:
    user = scim.create_user("ivy@example.com")
    with transaction(scim.runtime.factory) as session:
        bootstrap = create_token(session, email="ivy@example.com", actor="t", now=scim.runtime.clock())
    api = TestClient(create_app(scim.runtime))
    made = api.post(
        "/api/v1/tokens", json={"name": "laptop"}, headers={"Authorization": f"Bearer {bootstrap}"}
    )
    assert made.status_code == 201, made.text
    tokens = [bootstrap, made.json()["token"]]
    for token in tokens:
        assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    off = scim.call(
        "PATCH", f"/Users/{user['id']}", patch_body({"op": "replace", "path": "active", "value": False})
    )
    assert off.status_code == 200, off.text
    for token in tokens:
        refused = api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
        assert "ivy@example.com is not active" in refused.json()["detail"]
