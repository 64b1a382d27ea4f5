"""Scopes within roles, the role a scope set leaves, and token lifetimes within their bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sluice.domain.errors import InvalidInput, NotAllowed
from sluice.domain.roles import Role
from sluice.domain.tokens import (
    Scope,
    TokenLifetimes,
    check_scopes,
    permits,
    role_within,
    scope_needed,
    scopes_allowed,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_admin_scope_needs_an_operating_role_and_approve_a_person() -> None:
    assert Scope.ADMIN not in scopes_allowed(Role.USER, service_account=False)
    assert Scope.ADMIN not in scopes_allowed(Role.AUDITOR, service_account=False)
    assert Scope.ADMIN in scopes_allowed(Role.ADMIN, service_account=False)
    assert Scope.APPROVE not in scopes_allowed(Role.ADMIN, service_account=True)
    with pytest.raises(NotAllowed, match="never approves"):
        check_scopes(frozenset({Scope.APPROVE}), role=Role.USER, service_account=True)


@pytest.mark.parametrize("role", list(Role))
def test_without_the_admin_scope_a_token_reads_at_most(role: Role) -> None:
    narrowed = role_within(role, frozenset({Scope.READ, Scope.REQUEST}))
    assert not narrowed.operates
    assert narrowed.reads_everything == role.reads_everything
    assert role_within(role, frozenset({Scope.ADMIN})) is role


def test_what_a_call_needs_and_what_admin_implies() -> None:
    assert scope_needed("GET", None) is Scope.READ
    assert scope_needed("DELETE", None) is Scope.REQUEST
    assert scope_needed("POST", "approve") is Scope.APPROVE
    admin = frozenset({Scope.ADMIN})
    assert permits(admin, Scope.READ) and permits(admin, Scope.REQUEST)
    assert not permits(admin, Scope.APPROVE)
    assert not permits(frozenset({Scope.READ}), Scope.REQUEST)


def test_lifetimes() -> None:
    lifetimes = TokenLifetimes(default=timedelta(days=30), maximum=timedelta(days=90))
    assert lifetimes.expiry(None, NOW) == NOW + timedelta(days=30)
    assert lifetimes.expiry("90d", NOW) == NOW + timedelta(days=90)
    with pytest.raises(NotAllowed, match="at most 90d"):
        lifetimes.expiry("91d", NOW)
    with pytest.raises(NotAllowed, match="SLUICE_TOKEN_ALLOW_NEVER"):
        lifetimes.expiry("never", NOW)
    assert TokenLifetimes(allow_never=True).expiry("never", NOW) is None
    for bad in ("0d", "soon", "1h30m", "-1d"):
        with pytest.raises(InvalidInput):
            lifetimes.expiry(bad, NOW)
    with pytest.raises(ValueError, match="longer than the maximum"):
        TokenLifetimes(default=timedelta(days=400))


def test_lifetimes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.runtime.settings import token_lifetimes_from_env

    monkeypatch.setenv("SLUICE_TOKEN_DEFAULT_LIFETIME", "7d")
    monkeypatch.setenv("SLUICE_TOKEN_MAX_LIFETIME", "30d")
    monkeypatch.setenv("SLUICE_TOKEN_ALLOW_NEVER", "true")
    assert token_lifetimes_from_env() == TokenLifetimes(
        default=timedelta(days=7), maximum=timedelta(days=30), allow_never=True
    )
