"""Checking an ID token (OpenID Connect Core 3.1.3.7): signature by a key of the provider, issuer,
audience, authorised party, times within a bounded skew, and the nonce of this sign-in."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwt import JWTClaimsRegistry

from sluice.domain.errors import NotAuthenticated
from sluice.services.signin.provider import OpenIdProvider

# Asymmetric algorithms only: an HS256 token would be "signed" with the client secret, and `none` is
# no signature at all.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class SignInRefused(NotAuthenticated):
    """A sign-in that cannot be accepted; the detail says why in words a person can act on."""

    title = "Sign-in refused"
    slug = "sign-in-refused"


def verify_id_token(
    provider: OpenIdProvider, token: str, *, nonce: str | None, now: datetime
) -> dict[str, Any]:
    """The claims of `token` once every check passed. `nonce` is the one sent with this sign-in
    (None for the device grant, which sends none)."""
    settings = provider.settings
    try:
        header = jws.extract_compact(token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise SignInRefused("the ID token is not a signed JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise SignInRefused(
            f"the ID token is signed with {header.get('alg')!r}, which Sluice does not accept"
        )
    kid = header.get("kid")
    keys = provider.key_set(kid if isinstance(kid, str) else None)
    try:
        decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
    except JoseError as exc:
        raise SignInRefused(
            "the ID token's signature does not verify with any of the provider's keys"
        ) from exc
    claims = decoded.claims
    issuer = provider.metadata().issuer
    registry = JWTClaimsRegistry(
        now=int(now.timestamp()),
        leeway=settings.clock_skew_seconds,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": settings.client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise SignInRefused("the ID token has expired; sign in again (or check this server's clock)") from exc
    except MissingClaimError as exc:
        raise SignInRefused(f"the ID token lacks a required claim: {exc.description}") from exc
    except InvalidClaimError as exc:
        raise SignInRefused(_claim_words(exc, issuer, settings.client_id)) from exc
    except JoseError as exc:
        raise SignInRefused(f"the ID token's claims are not acceptable: {exc}") from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != settings.client_id:
        raise SignInRefused(f"the ID token was issued to another party (azp {azp!r})")
    if nonce is not None:
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent, nonce):
            raise SignInRefused("the ID token's nonce is not the one of this sign-in (a replayed token?)")
    return claims


def _claim_words(exc: InvalidClaimError, issuer: str, client_id: str) -> str:
    name = exc.claim
    if name == "iss":
        return f"the ID token was issued by someone else, not {issuer!r}"
    if name == "aud":
        return f"the ID token is meant for another client, not {client_id!r}"
    if name in ("iat", "nbf"):
        return "the ID token is dated in the future; check the clocks of this server and the provider"
    return f"the ID token's {name!r} claim is not acceptable"
