"""Named API tokens: create (for oneself, or by an admin for a service account), list, revoke. Each
token has a name unique per owner, an expiry within the configured bounds, and scopes within its
owner's role (`domain/tokens.py`). Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sluice.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound
from sluice.domain.roles import Role
from sluice.domain.tokens import Scope, TokenLifetimes, check_scopes, format_scopes, permits
from sluice.events.audit import Action, record
from sluice.services.directory.service_accounts import service_account
from sluice.services.directory.tokens import Caller, mint_token, token_words
from sluice.services.pages import Page, page_of
from sluice.store.queries import identity_by_email
from sluice.store.tables import ApiToken, Identity

MAX_TOKEN_NAME = 100


@dataclass(frozen=True)
class TokenAsked:
    name: str
    scopes: frozenset[Scope]
    expires: str | None  # `30d`, `never`, or None for the default lifetime


@dataclass(frozen=True)
class NewToken:
    secret: str  # shown once
    row: ApiToken


def _create(
    session: Session,
    *,
    owner: Identity,
    role: Role,
    service_account: bool,
    asked: TokenAsked,
    lifetimes: TokenLifetimes,
    actor: str,
    now: datetime,
) -> NewToken:
    name = asked.name.strip()
    if not name or len(name) > MAX_TOKEN_NAME:
        raise InvalidInput(f"a token name holds 1 to {MAX_TOKEN_NAME} characters")
    if not asked.scopes:
        raise InvalidInput("give a token at least one scope: read, request, approve or admin")
    check_scopes(asked.scopes, role=role, service_account=service_account)
    expires_at = lifetimes.expiry(asked.expires, now)
    taken = session.scalar(select(ApiToken.id).where(ApiToken.identity_id == owner.id, ApiToken.name == name))
    if taken is not None:
        raise Conflict(f"{owner.email} already has a token named {name!r}; pick another name or revoke it")
    secret, row = mint_token(
        session, identity=owner, role=role, scopes=asked.scopes, name=name, expires_at=expires_at, now=now
    )
    try:
        session.flush()
    except IntegrityError as exc:  # the same name made at the same moment by another call
        raise Conflict(f"{owner.email} already has a token named {name!r}") from exc
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TOKEN_CREATED,
        subject_type="identity",
        subject_id=owner.email,
        name=name,
        role=role.value,
        scopes=format_scopes(asked.scopes),
        expires_at=expires_at.isoformat() if expires_at else None,
        token_id=row.id,
    )
    return NewToken(secret=secret, row=row)


def create_own_token(
    session: Session,
    *,
    caller: Caller,
    owner: Identity,
    asked: TokenAsked,
    lifetimes: TokenLifetimes,
    now: datetime,
) -> NewToken:
    """A token for the caller, never stronger than the credential that asks for it: its role is the
    caller's (already narrowed by the caller's scopes) and its scopes must be ones the caller holds."""
    if caller.service_account:
        raise NotAllowed("a service account's tokens are made by an admin: /service-accounts/{name}/tokens")
    missing = frozenset(scope for scope in asked.scopes if not permits(caller.scopes, scope))
    if missing:
        raise NotAllowed(f"this credential lacks scope {format_scopes(missing)}; it cannot give it away")
    return _create(
        session,
        owner=owner,
        role=caller.role,
        service_account=False,
        asked=asked,
        lifetimes=lifetimes,
        actor=owner.email,
        now=now,
    )


def create_service_account_token(
    session: Session, *, name: str, asked: TokenAsked, lifetimes: TokenLifetimes, actor: str, now: datetime
) -> NewToken:
    """A token for a service account, made by an admin; its role is the account's."""
    account = service_account(session, name)
    if account.disabled_at is not None:
        raise Conflict(f"service account {name!r} is disabled")
    return _create(
        session,
        owner=account.identity,
        role=Role(account.role),
        service_account=True,
        asked=asked,
        lifetimes=lifetimes,
        actor=actor,
        now=now,
    )


def list_tokens(
    session: Session, *, caller: Caller, owner: str | None, everyone: bool, limit: int, offset: int
) -> Page[ApiToken]:
    """The caller's own tokens; an admin may ask for one owner's (`owner`) or everyone's."""
    query = select(ApiToken).join(Identity, Identity.id == ApiToken.identity_id)
    if (everyone or owner is not None) and not caller.is_admin:
        raise NotAllowed("only an admin lists other people's tokens")
    if owner is not None:
        identity = identity_by_email(session, owner)
        if identity is None:
            raise NotFound(f"no identity {owner!r}")
        query = query.where(ApiToken.identity_id == identity.id)
    elif not everyone:
        query = query.where(ApiToken.identity_id == caller.identity.id)
    return page_of(session, query.order_by(ApiToken.created_at.desc(), ApiToken.id), limit, offset)


def revoke_token(session: Session, *, caller: Caller, token_id: str, now: datetime) -> ApiToken:
    """Revoke a token: one's own, or (admin) anyone's. It stops working at once. Revoking a revoked
    token changes nothing."""
    row = session.get(ApiToken, token_id, with_for_update=True)
    if row is None or (row.identity_id != caller.identity.id and not caller.is_admin):
        # Another person's token is not there for this caller: not even its existence is told.
        raise NotFound(f"no token {token_id!r} of yours")
    if row.revoked_at is None:
        row.revoked_at = now
        record(
            session,
            now=now,
            actor=caller.identity.email,
            action=Action.TOKEN_REVOKED,
            subject_type="identity",
            subject_id=row.identity.email,
            name=token_words(row),
            token_id=row.id,
        )
    return row
