"""What an API token may do and how long it lives: scopes and the expiry policy. Pure: `now` is passed.

A token acts for its owner (a person or a service account) and never beyond the role it was made
with (`domain/roles.py`). Its scopes narrow that further:

| scope | lets the token |
|---|---|
| `read` | read: `GET` calls (what the owner's role may see) |
| `request` | change what is the owner's own: ask for access, cancel, extend, end own grants, own tokens |
| `approve` | approve or reject requests the owner is an approver of (never a service account) |
| `admin` | use the owner's role beyond their own access (an operator or admin role); |
| | implies `read` and `request` |
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sluice.domain.durations import format_duration, parse_duration
from sluice.domain.errors import InvalidInput, NotAllowed
from sluice.domain.roles import Role

NEVER = "never"
# A lifetime as the API takes it: one positive number and a unit (`90d`, `12h`), or `never`.
LIFETIME_PATTERN = r"^(never|[1-9][0-9]{0,5}[smhd])$"
_LIFETIME = re.compile(LIFETIME_PATTERN)


class Scope(StrEnum):
    READ = "read"
    REQUEST = "request"
    APPROVE = "approve"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)
DEFAULT_SCOPES = frozenset({Scope.READ, Scope.REQUEST})


def parse_scopes(text: str) -> frozenset[Scope]:
    """Scopes as the store keeps them: comma-separated names."""
    return frozenset(Scope(part) for part in text.split(",") if part)


def format_scopes(scopes: Iterable[Scope]) -> str:
    return ",".join(sorted(scope.value for scope in scopes))


def scopes_allowed(role: Role, *, service_account: bool) -> frozenset[Scope]:
    """The scopes a token of an owner with `role` may carry."""
    allowed = {Scope.READ, Scope.REQUEST}
    if not service_account:
        allowed.add(Scope.APPROVE)
    if role.operates:
        allowed.add(Scope.ADMIN)
    return frozenset(allowed)


def check_scopes(asked: frozenset[Scope], *, role: Role, service_account: bool) -> None:
    """Refuse scopes the owner's role (or kind) cannot carry."""
    beyond = asked - scopes_allowed(role, service_account=service_account)
    if Scope.APPROVE in beyond and service_account:
        raise NotAllowed("a service account never approves: its tokens cannot carry the `approve` scope")
    if beyond:
        raise NotAllowed(
            f"scope {format_scopes(beyond)} is beyond the owner's role {role.value}: `admin` needs an "
            "operator or admin owner"
        )


def role_within(role: Role, scopes: frozenset[Scope]) -> Role:
    """What the token may do beyond the owner's own access: the role only with the `admin` scope;
    otherwise at most reading everything (for a role that reads everything)."""
    if Scope.ADMIN in scopes:
        return role
    return Role.AUDITOR if role.reads_everything else Role.USER


def permits(scopes: frozenset[Scope], needed: Scope) -> bool:
    if needed in scopes:
        return True
    return Scope.ADMIN in scopes and needed is not Scope.APPROVE


def scope_needed(method: str, declared: str | None) -> Scope:
    """The scope a call needs: what its route declares, else `read` for a safe method and `request`
    for one that changes something."""
    if declared is not None:
        return Scope(declared)
    return Scope.READ if method.upper() in {"GET", "HEAD", "OPTIONS"} else Scope.REQUEST


@dataclass(frozen=True)
class TokenLifetimes:
    """How long a new token lives when nobody says, the longest it may, and whether `never` is allowed."""

    default: timedelta = timedelta(days=30)
    maximum: timedelta = timedelta(days=365)
    allow_never: bool = False

    def __post_init__(self) -> None:
        if self.default > self.maximum:
            raise ValueError(
                f"the default token lifetime ({format_duration(self.default)}) is longer than the "
                f"maximum ({format_duration(self.maximum)})"
            )

    def expiry(self, asked: str | None, now: datetime) -> datetime | None:
        """When a token asked to live `asked` (`30d`, `12h`, `never`, or None for the default) ends.
        A lifetime the operator does not allow is refused as not allowed, a malformed one as invalid."""
        if asked is None:
            return now + self.default
        cleaned = asked.strip().lower()
        if not _LIFETIME.match(cleaned):
            raise InvalidInput(
                f"token lifetime {asked!r} is not understood; write it like '30d', '12h' or 'never'"
            )
        if cleaned == NEVER:
            if not self.allow_never:
                raise NotAllowed(
                    "tokens that never expire are not allowed here; give a lifetime up to "
                    f"{format_duration(self.maximum)} (an operator allows `never` with "
                    "SLUICE_TOKEN_ALLOW_NEVER=true)"
                )
            return None
        lifetime = parse_duration(cleaned)
        if lifetime > self.maximum:
            raise NotAllowed(
                f"a token lives at most {format_duration(self.maximum)} here; {asked!r} is longer"
            )
        return now + lifetime
