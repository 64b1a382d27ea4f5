"""The portal with OIDC configured: its sign-in page sends people to the identity provider, offers no
demo sign-in, and the session cookie the provider's answer sets opens the portal's pages."""

from __future__ import annotations

from tests.signin.conftest import SignIn


def test_the_portal_signs_in_through_the_identity_provider(signin: SignIn) -> None:
    page = signin.client.get("/signin")
    assert page.status_code == 200
    assert 'href="/auth/login"' in page.text
    assert "Demo sign-in" not in page.text
    assert signin.client.get("/access", follow_redirects=False).headers["location"] == "/signin"
    assert signin.sign_in("alice@example.com").status_code == 200
    mine = signin.client.get("/access")
    assert mine.status_code == 200 and "alice@example.com" in mine.text
