"""Bodies and shapes of the token and service-account endpoints, and the mapping from their rows.
A token's secret appears only in `TokenCreated`, the answer to creating it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from sluice.api.schemas import Body
from sluice.domain.roles import Role
from sluice.domain.text import Text
from sluice.domain.tokens import DEFAULT_SCOPES, LIFETIME_PATTERN, Scope, parse_scopes
from sluice.services.directory.service_accounts import NAME_PATTERN
from sluice.services.directory.token_lifecycle import MAX_TOKEN_NAME
from sluice.store.auth_tables import ServiceAccount
from sluice.store.tables import ApiToken

TokenName = Annotated[str, Text(max_length=MAX_TOKEN_NAME, min_length=1)]
Lifetime = Annotated[
    str,
    Text(max_length=8, min_length=1, pattern=LIFETIME_PATTERN, pattern_words="like '30d', '12h' or 'never'"),
]
AccountName = Annotated[
    str,
    Text(
        max_length=63, min_length=1, pattern=NAME_PATTERN, pattern_words="lowercase letters, digits and '-'"
    ),
]
AccountDescription = Annotated[str, Text(max_length=500)]


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class TokenCreate(Body):
    name: TokenName = Field(description="Unique among the owner's tokens")
    expires: Lifetime | None = Field(
        default=None,
        description="How long it lives: '30d', '12h' (at most the configured maximum), or 'never' where "
        "the operator allows it; left out: the configured default",
    )
    scopes: list[Scope] = Field(
        default_factory=lambda: sorted(DEFAULT_SCOPES),
        min_length=1,
        max_length=len(Scope),
        description="What the token may do, within the owner's role",
    )


class TokenView(BaseModel):
    id: str
    name: str | None = Field(description="None for a store-side bootstrap token")
    owner: str
    prefix: str = Field(description="The token's first characters, to recognise it (not a secret)")
    role: Role
    scopes: list[Scope]
    state: TokenState
    created_at: datetime
    expires_at: datetime | None = Field(description="None: never")
    last_used_at: datetime | None = Field(description="Written at most once a minute")
    revoked_at: datetime | None


class TokenCreated(TokenView):
    token: str = Field(description="The secret: shown this once, stored only as a hash")


class TokenPage(BaseModel):
    items: list[TokenView]
    total: int


class ServiceAccountCreate(Body):
    name: AccountName
    description: AccountDescription = ""
    role: Role = Field(default=Role.USER, description="The most its tokens may do")


class ServiceAccountView(BaseModel):
    name: str
    email: str = Field(description="Its identity in requests, grants and the audit log")
    owner: str
    role: Role
    description: str
    active: bool
    created_at: datetime
    disabled_at: datetime | None


class ServiceAccountPage(BaseModel):
    items: list[ServiceAccountView]
    total: int


def token_state(row: ApiToken, now: datetime) -> TokenState:
    if row.revoked_at is not None:
        return TokenState.REVOKED
    if row.expires_at is not None and row.expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.ACTIVE


def token_view(row: ApiToken, now: datetime) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        owner=row.identity.email,
        prefix=row.display_prefix,
        role=Role(row.role),
        scopes=sorted(parse_scopes(row.scopes)),
        state=token_state(row, now),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def service_account_view(account: ServiceAccount) -> ServiceAccountView:
    return ServiceAccountView(
        name=account.name,
        email=account.identity.email,
        owner=account.owner,
        role=Role(account.role),
        description=account.description,
        active=account.identity.active,
        created_at=account.created_at,
        disabled_at=account.disabled_at,
    )
