"""ID tokens Sluice must refuse, made by the real provider (or forged beside it), and key rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from sluice.services.signin.id_tokens import SignInRefused, verify_id_token
from sluice.services.signin.provider import OpenIdProvider
from tests.oidc_provider import (
    CALLBACK,
    CLIENT_ID,
    OTHER_CLIENT_ID,
    OTHER_REDIRECT,
    Browser,
    RunningProvider,
    free_port,
    new_key,
    start_provider,
)
from tests.signin.conftest import pkce_pair, settings_for

NONCE = "the-nonce-of-this-sign-in"


def id_token_from(
    provider: RunningProvider,
    email: str,
    *,
    client_id: str = CLIENT_ID,
    secret: str | None = None,
    redirect: str = CALLBACK,
    nonce: str = NONCE,
) -> str:
    """An ID token the provider issues to `client_id` for `email`, by the authorization code flow."""
    verifier, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": "openid email profile",
        "state": "s",
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser = Browser(provider.issuer)
    try:
        back = browser.sign_in(f"{provider.issuer}/auth?{urlencode(query)}", email)
    finally:
        browser.close()
    code = parse_qs(urlsplit(back).query)["code"][0]
    answer = httpx.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "code_verifier": verifier,
        },
        auth=(client_id, secret or provider.client_secret),
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id_token"])


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def oidc(openid_provider: RunningProvider) -> OpenIdProvider:
    return OpenIdProvider(settings_for(openid_provider), monotonic=Ticks())


def test_a_real_token_passes_every_check(oidc: OpenIdProvider, openid_provider: RunningProvider) -> None:
    claims = verify_id_token(
        oidc, id_token_from(openid_provider, "alice@example.com"), nonce=NONCE, now=datetime.now(UTC)
    )
    assert claims["email"] == "alice@example.com" and claims["aud"] == CLIENT_ID


def test_a_token_signed_by_another_key_is_refused(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    real = id_token_from(openid_provider, "alice@example.com")
    claims = verify_id_token(oidc, real, nonce=NONCE, now=datetime.now(UTC))
    real_kid = openid_provider.keys[0]["kid"]
    stranger = RSAKey.import_key(new_key())
    for kid in (real_kid, "a-key-the-provider-never-had"):
        forged = jwt.encode({"alg": "RS256", "kid": kid}, claims, stranger)
        with pytest.raises(SignInRefused, match="signature does not verify"):
            verify_id_token(oidc, forged, nonce=NONCE, now=datetime.now(UTC))


def test_symmetric_and_unsigned_tokens_are_refused(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    claims = verify_id_token(
        oidc, id_token_from(openid_provider, "alice@example.com"), nonce=NONCE, now=datetime.now(UTC)
    )
    # "Signed" with the client secret, which Sluice knows: a classic confusion, refused.
    secret = OctKey.import_key(openid_provider.client_secret.encode())
    hs256 = jwt.encode({"alg": "HS256"}, claims, secret)
    with pytest.raises(SignInRefused, match="'HS256'"):
        verify_id_token(oidc, hs256, nonce=NONCE, now=datetime.now(UTC))
    head, body, _ = hs256.split(".")
    with pytest.raises(SignInRefused):
        verify_id_token(oidc, f"{head}.{body}.", nonce=NONCE, now=datetime.now(UTC))


def test_a_token_for_another_client_is_refused(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    theirs = id_token_from(
        openid_provider,
        "alice@example.com",
        client_id=OTHER_CLIENT_ID,
        secret="another-secret-of-another-app",
        redirect=OTHER_REDIRECT,
    )
    with pytest.raises(SignInRefused, match="meant for another client"):
        verify_id_token(oidc, theirs, nonce=NONCE, now=datetime.now(UTC))


def test_an_expired_token_is_refused_with_a_bounded_skew(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    token = id_token_from(openid_provider, "alice@example.com")
    claims = verify_id_token(oidc, token, nonce=NONCE, now=datetime.now(UTC))
    expiry = datetime.fromtimestamp(claims["exp"], UTC)

    verify_id_token(oidc, token, nonce=NONCE, now=expiry + timedelta(seconds=59))
    with pytest.raises(SignInRefused, match="expired"):
        verify_id_token(oidc, token, nonce=NONCE, now=expiry + timedelta(seconds=61))
    issued = datetime.fromtimestamp(claims["iat"], UTC)
    with pytest.raises(SignInRefused, match="in the future"):
        verify_id_token(oidc, token, nonce=NONCE, now=issued - timedelta(seconds=61))


def test_a_token_with_another_nonce_is_refused(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    """A token replayed into another sign-in carries that other sign-in's nonce."""
    token = id_token_from(openid_provider, "alice@example.com", nonce="an-earlier-sign-in")
    with pytest.raises(SignInRefused, match="nonce"):
        verify_id_token(oidc, token, nonce=NONCE, now=datetime.now(UTC))


def test_claims_signed_by_the_provider_key_are_still_checked(
    oidc: OpenIdProvider, openid_provider: RunningProvider
) -> None:
    """With the provider's own key (which the tests hold), only the claims can be wrong."""
    claims = verify_id_token(
        oidc, id_token_from(openid_provider, "alice@example.com"), nonce=NONCE, now=datetime.now(UTC)
    )
    key = RSAKey.import_key(openid_provider.keys[0])

    def signed(**changes: object) -> str:
        return jwt.encode({"alg": "RS256", "kid": key.kid}, {**claims, **changes}, key)

    now = datetime.now(UTC)
    assert verify_id_token(oidc, signed(), nonce=NONCE, now=now)
    with pytest.raises(SignInRefused, match="issued by someone else"):
        verify_id_token(oidc, signed(iss="https://evil.example"), nonce=NONCE, now=now)
    with pytest.raises(SignInRefused, match="another party"):
        verify_id_token(
            oidc, signed(aud=[CLIENT_ID, OTHER_CLIENT_ID], azp=OTHER_CLIENT_ID), nonce=NONCE, now=now
        )
    with pytest.raises(SignInRefused, match="another party"):
        verify_id_token(oidc, signed(aud=[CLIENT_ID, OTHER_CLIENT_ID]), nonce=NONCE, now=now)
    assert verify_id_token(
        oidc, signed(aud=[CLIENT_ID, OTHER_CLIENT_ID], azp=CLIENT_ID), nonce=NONCE, now=now
    )
    without_sub = {k: v for k, v in claims.items() if k != "sub"}
    with pytest.raises(SignInRefused, match="sub"):
        verify_id_token(
            oidc, jwt.encode({"alg": "RS256", "kid": key.kid}, without_sub, key), nonce=NONCE, now=now
        )


def test_rotated_keys_are_fetched_again_and_unknown_kids_cannot_flood_the_provider() -> None:
    port = free_port()
    first = start_provider(port=port)
    ticks = Ticks()
    oidc = OpenIdProvider(settings_for(first), monotonic=ticks)
    try:
        verify_id_token(oidc, id_token_from(first, "alice@example.com"), nonce=NONCE, now=datetime.now(UTC))
        assert oidc.key_fetches == 1
        verify_id_token(oidc, id_token_from(first, "bob@example.com"), nonce=NONCE, now=datetime.now(UTC))
        assert oidc.key_fetches == 1  # cached
    finally:
        first.stop()

    # The provider rotates: same issuer, a new signing key.
    second = start_provider(port=port, keys=[new_key()], client_secret=first.client_secret)
    try:
        rotated = id_token_from(second, "alice@example.com")
        ticks.now += 11  # past the refetch cooldown
        assert (
            verify_id_token(oidc, rotated, nonce=NONCE, now=datetime.now(UTC))["email"] == "alice@example.com"
        )
        assert oidc.key_fetches == 2

        # Tokens naming keys nobody has: at most one fetch per cooldown, however many arrive.
        stranger = RSAKey.import_key(new_key())
        for n in range(5):
            forged = jwt.encode({"alg": "RS256", "kid": f"unknown-{n}"}, {"sub": "x"}, stranger)
            with pytest.raises(SignInRefused):
                verify_id_token(oidc, forged, nonce=NONCE, now=datetime.now(UTC))
        assert oidc.key_fetches == 2
        ticks.now += 11
        with pytest.raises(SignInRefused):
            verify_id_token(oidc, forged, nonce=NONCE, now=datetime.now(UTC))
        assert oidc.key_fetches == 3
    finally:
        second.stop()
        oidc.close()
