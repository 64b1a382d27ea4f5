"""Where Sluice keeps its state and how it reaches its store, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sluice.domain.durations import parse_duration
from sluice.domain.tokens import TokenLifetimes
from sluice.services.notify.slack_settings import SlackSettings


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    secret_key: str | None
    # Keys still accepted for opening secrets during a rotation (`sluice keys rotate`), never for sealing.
    old_secret_keys: tuple[str, ...] = ()
    # API tokens: default and longest lifetime, whether `never` is allowed (docs/identity.md, Tokens).
    token_lifetimes: TokenLifetimes = field(default_factory=TokenLifetimes)
    # Where people reach the portal, for links in notifications (`SLUICE_PUBLIC_URL`; falls back to
    # `SLUICE_OIDC_PUBLIC_URL`); None: messages carry no links.
    public_url: str | None = None
    # The Slack app (docs/notifications.md, Slack); None when no bot token is set.
    slack: SlackSettings | None = None

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("SLUICE_HOME", ".sluice")).expanduser().resolve()
        url = os.environ.get("SLUICE_DATABASE_URL") or f"sqlite:///{home / 'sluice.db'}"
        old = tuple(k.strip() for k in os.environ.get("SLUICE_OLD_SECRET_KEYS", "").split(",") if k.strip())
        return cls(
            home=home,
            database_url=url,
            secret_key=os.environ.get("SLUICE_SECRET_KEY") or None,
            old_secret_keys=old,
            token_lifetimes=token_lifetimes_from_env(),
            public_url=public_url_from_env(),
            slack=SlackSettings.from_env(),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def public_url_from_env() -> str | None:
    """`SLUICE_PUBLIC_URL` (else `SLUICE_OIDC_PUBLIC_URL`), without a trailing slash; it must be an
    absolute http(s) URL."""
    url = (os.environ.get("SLUICE_PUBLIC_URL") or os.environ.get("SLUICE_OIDC_PUBLIC_URL") or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"SLUICE_PUBLIC_URL must be an absolute http(s) URL, not {url!r}")
    return url.rstrip("/")


def token_lifetimes_from_env() -> TokenLifetimes:
    """`SLUICE_TOKEN_DEFAULT_LIFETIME` (30d), `SLUICE_TOKEN_MAX_LIFETIME` (365d) and
    `SLUICE_TOKEN_ALLOW_NEVER` (false)."""
    default = os.environ.get("SLUICE_TOKEN_DEFAULT_LIFETIME") or "30d"
    maximum = os.environ.get("SLUICE_TOKEN_MAX_LIFETIME") or "365d"
    allow_never = os.environ.get("SLUICE_TOKEN_ALLOW_NEVER", "").strip().lower() in {"1", "true", "yes"}
    return TokenLifetimes(
        default=parse_duration(default), maximum=parse_duration(maximum), allow_never=allow_never
    )
