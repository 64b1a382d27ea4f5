"""The sign-in settings from the environment: off unless an issuer is set, and every mistake named."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.services.signin.settings import SignInConfigError, SignInSettings

BASE = {
    "SLUICE_OIDC_ISSUER": "https://example.okta.com/oauth2/default",
    "SLUICE_OIDC_CLIENT_ID": "0oa1sluice",
    "SLUICE_OIDC_CLIENT_SECRET": "s3cret",
}


def test_off_without_an_issuer() -> None:
    assert SignInSettings.from_env({}) is None


def test_defaults_and_a_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("from-the-file\n")
    env = {k: v for k, v in BASE.items() if k != "SLUICE_OIDC_CLIENT_SECRET"}
    settings = SignInSettings.from_env(env | {"SLUICE_OIDC_CLIENT_SECRET_FILE": str(secret)})
    assert settings is not None
    assert settings.client_secret == "from-the-file"
    assert settings.scopes == ("openid", "email", "profile")
    assert settings.create_unknown is False and settings.require_email_verified is True
    assert settings.clock_skew_seconds == 60 and settings.session_hours == 12
    assert "from-the-file" not in repr(settings)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"SLUICE_OIDC_ISSUER": "http://idp.example.com"}, "https"),
        ({"SLUICE_OIDC_CLIENT_ID": ""}, "SLUICE_OIDC_CLIENT_ID"),
        ({"SLUICE_OIDC_CLIENT_SECRET": ""}, "SLUICE_OIDC_CLIENT_SECRET_FILE"),
        ({"SLUICE_OIDC_CLIENT_SECRET_FILE": "/nonexistent/secret"}, "cannot read"),
        ({"SLUICE_OIDC_SCOPES": "email profile"}, "openid"),
        ({"SLUICE_OIDC_CREATE_UNKNOWN": "maybe"}, "true or false"),
        ({"SLUICE_OIDC_CLOCK_SKEW_SECONDS": "3600"}, "between 0 and 300"),
        ({"SLUICE_SESSION_HOURS": "12h"}, "whole number"),
        ({"SLUICE_OIDC_GROUPS_CLAIM": "groups; drop"}, "not a claim name"),
    ],
)
def test_mistakes_are_named(change: dict[str, str], words: str) -> None:
    with pytest.raises(SignInConfigError, match=words):
        SignInSettings.from_env(BASE | change)


def test_loopback_issuers_may_be_plain_http() -> None:
    settings = SignInSettings.from_env(BASE | {"SLUICE_OIDC_ISSUER": "http://127.0.0.1:9000"})
    assert settings is not None and settings.issuer == "http://127.0.0.1:9000"
