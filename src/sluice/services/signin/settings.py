"""How Sluice talks to its OpenID Provider, read once from the environment of the server process.

Like the store URL and the secret key, this is a setting of the server, not an object of the config
file: the client secret must live where the server runs, and every server of a deployment reads the
same variables. Without `SLUICE_OIDC_ISSUER` sign-in is off and only API tokens work.

| variable | meaning |
|---|---|
| `SLUICE_OIDC_ISSUER` | the provider's issuer URL; discovery is below it |
| `SLUICE_OIDC_CLIENT_ID` | the client registered for Sluice |
| `SLUICE_OIDC_CLIENT_SECRET_FILE` / `SLUICE_OIDC_CLIENT_SECRET` | the secret: a file, or the value |
| `SLUICE_OIDC_SCOPES` | default `openid email profile` |
| `SLUICE_OIDC_EMAIL_CLAIM`, `…_NAME_CLAIM`, `…_GROUPS_CLAIM` | default `email`, `name`, none |
| `SLUICE_OIDC_CREATE_UNKNOWN` | `true` creates a person on first sign-in; default `false` |
| `SLUICE_OIDC_ADMIN_GROUPS` | comma-separated groups whose members' sessions are admin |
| `SLUICE_OIDC_REQUIRE_EMAIL_VERIFIED` | default `true`; see docs/identity.md before turning it off |
| `SLUICE_OIDC_PUBLIC_URL` | the URL people reach Sluice at, when a proxy hides it |
| `SLUICE_OIDC_CLOCK_SKEW_SECONDS` | tolerance on token times, default 60, at most 300 |
| `SLUICE_SESSION_HOURS` | lifetime of a Sluice session, default 12, at most 168 |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sluice.domain.errors import SluiceError

_CLAIM = re.compile(r"^[A-Za-z0-9_:./-]{1,100}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SignInConfigError(SluiceError):
    """The sign-in settings are wrong: the server refuses to start with them."""


@dataclass(frozen=True)
class SignInSettings:
    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    email_claim: str = "email"
    name_claim: str = "name"
    groups_claim: str | None = None
    create_unknown: bool = False
    admin_groups: frozenset[str] = frozenset()
    require_email_verified: bool = True
    public_url: str | None = None
    clock_skew_seconds: int = 60
    session_hours: int = 12

    def __repr__(self) -> str:  # never print the secret
        return f"SignInSettings(issuer={self.issuer!r}, client_id={self.client_id!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SignInSettings | None:
        """The settings, or None when sign-in is not configured. Raises `SignInConfigError` naming
        the variable at fault."""
        env = os.environ if env is None else env
        issuer = env.get("SLUICE_OIDC_ISSUER", "").strip()
        if not issuer:
            return None
        parts = urlsplit(issuer)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise SignInConfigError(
                f"SLUICE_OIDC_ISSUER {issuer!r} must be an https:// URL (http:// only on loopback)"
            )
        if parts.query or parts.fragment:
            raise SignInConfigError("SLUICE_OIDC_ISSUER must not carry a query or fragment")
        client_id = env.get("SLUICE_OIDC_CLIENT_ID", "").strip()
        if not client_id:
            raise SignInConfigError("SLUICE_OIDC_CLIENT_ID is not set (the client registered for Sluice)")
        scopes = tuple(env.get("SLUICE_OIDC_SCOPES", "openid email profile").split())
        if "openid" not in scopes:
            raise SignInConfigError("SLUICE_OIDC_SCOPES must include openid")
        public_url = env.get("SLUICE_OIDC_PUBLIC_URL", "").strip().rstrip("/") or None
        if public_url and urlsplit(public_url).scheme not in ("http", "https"):
            raise SignInConfigError("SLUICE_OIDC_PUBLIC_URL must be an http:// or https:// URL")
        return cls(
            issuer=issuer,
            client_id=client_id,
            client_secret=_client_secret(env),
            scopes=scopes,
            email_claim=_claim(env, "SLUICE_OIDC_EMAIL_CLAIM", "email"),
            name_claim=_claim(env, "SLUICE_OIDC_NAME_CLAIM", "name"),
            groups_claim=_claim(env, "SLUICE_OIDC_GROUPS_CLAIM", "") or None,
            create_unknown=_flag(env, "SLUICE_OIDC_CREATE_UNKNOWN", default=False),
            admin_groups=frozenset(
                g.strip() for g in env.get("SLUICE_OIDC_ADMIN_GROUPS", "").split(",") if g.strip()
            ),
            require_email_verified=_flag(env, "SLUICE_OIDC_REQUIRE_EMAIL_VERIFIED", default=True),
            public_url=public_url,
            clock_skew_seconds=_bounded(env, "SLUICE_OIDC_CLOCK_SKEW_SECONDS", 60, 0, 300),
            session_hours=_bounded(env, "SLUICE_SESSION_HOURS", 12, 1, 168),
        )


def _client_secret(env: Mapping[str, str]) -> str:
    path = env.get("SLUICE_OIDC_CLIENT_SECRET_FILE", "").strip()
    if path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SignInConfigError(
                f"SLUICE_OIDC_CLIENT_SECRET_FILE: cannot read {path}: {exc.strerror}"
            ) from exc
    else:
        secret = env.get("SLUICE_OIDC_CLIENT_SECRET", "").strip()
    if not secret:
        raise SignInConfigError(
            "set SLUICE_OIDC_CLIENT_SECRET_FILE (a file holding the client secret) or "
            "SLUICE_OIDC_CLIENT_SECRET"
        )
    return secret


def _claim(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).strip()
    if value and not _CLAIM.match(value):
        raise SignInConfigError(f"{name} {value!r} is not a claim name")
    return value


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    value = env.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise SignInConfigError(f"{name} must be true or false, got {value!r}")


def _bounded(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SignInConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise SignInConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value
