"""SCIM bearer tokens, one or more per directory source: random, shown once, stored as a hash, and
kept apart from API tokens, so a SCIM token can push its source's users and groups and do nothing
else, and an API token cannot push a directory."""

from __future__ import annotations

import secrets
from datetime import datetime

from scim2_models import SCIMException
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sluice.domain.errors import InvalidInput, NotAuthenticated
from sluice.events.audit import Action, record
from sluice.services.directory.scim_common import source_of
from sluice.services.directory.sources import SCIM_PREFIX
from sluice.services.directory.tokens import digest
from sluice.store.scim_tables import ScimToken
from sluice.store.types import new_id

SCIM_TOKEN_PREFIX = "slscim_"  # noqa: S105 (a visible marker, not a secret)


def _source(name: str) -> str:
    try:
        return source_of(name)
    except SCIMException as exc:
        raise InvalidInput(str(exc)) from exc


def create_scim_token(session: Session, *, source: str, actor: str, now: datetime) -> str:
    """A new token for the SCIM source `source` (e.g. `okta`)."""
    full = _source(source)
    token = SCIM_TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ScimToken(id=new_id("stk"), source=full, token_hash=digest(token), created_at=now))
    record(
        session,
        now=now,
        actor=actor,
        action=Action.TOKEN_CREATED,
        subject_type="scim_source",
        subject_id=full,
        source=full,
    )
    return token


def revoke_scim_tokens(session: Session, *, source: str, actor: str, now: datetime) -> int:
    """Revoke every token of a source; how many there were."""
    full = _source(source)
    done = session.execute(
        update(ScimToken)
        .where(ScimToken.source == full, ScimToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    count = int(getattr(done, "rowcount", 0) or 0)
    if count:
        record(
            session,
            now=now,
            actor=actor,
            action=Action.OBJECT_REMOVED,
            subject_type="scim_source",
            subject_id=full,
            kind="scim_token",
            name=full,
            counts={"revoked": count},
        )
    return count


def scim_source_for(session: Session, token: str) -> str:
    """The source (`scim:okta`) a SCIM token pushes for."""
    if not token.startswith(SCIM_TOKEN_PREFIX):
        raise NotAuthenticated("send a SCIM token from `sluice scim token create --source NAME`")
    source = session.scalar(
        select(ScimToken.source).where(ScimToken.token_hash == digest(token), ScimToken.revoked_at.is_(None))
    )
    if source is None or not source.startswith(SCIM_PREFIX):
        raise NotAuthenticated("the SCIM token is not valid; create one with `sluice scim token create`")
    return source
