"""One secret key per store. The store records the fingerprint of every key that may have sealed one
of its secrets; a process starts only if it can open them all, so a server and a worker holding
different keys cannot silently split a deployment (one sealing what the other cannot open). Rotating
re-seals every secret under the current key, then forgets the old fingerprints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.errors import SluiceError
from sluice.services.grants.secrets import KEY_HELP, SecretBox
from sluice.store.db import transaction
from sluice.store.locks import Duty, wait_for_duty_lock
from sluice.store.tables import Grant, SealingKey

RESEAL_BATCH = 200


def short(fingerprint: str) -> str:
    return fingerprint[:16]


class SecretKeyMismatch(SluiceError):
    title = "Wrong secret key"
    slug = "secret-key-mismatch"


def require_configured_key(*, is_sqlite: bool, secret_key: str | None, command: str) -> None:
    """Servers and workers on a shared store must share a key: a key file each would make of its own
    under SLUICE_HOME differs from process to process."""
    if is_sqlite or secret_key:
        return
    raise SluiceError(
        f"`sluice {command}` on a PostgreSQL store needs SLUICE_SECRET_KEY: every server and worker must "
        f"hold the same key to open the credentials the others sealed. {KEY_HELP.capitalize()}, keep it "
        "in your secret manager (and with your backups), and set SLUICE_SECRET_KEY to it for every "
        "server and worker."
    )


def stored_fingerprints(session: Session) -> list[str]:
    return list(session.scalars(select(SealingKey.fingerprint).order_by(SealingKey.added_at)))


def check_and_record_key(session: Session, box: SecretBox, *, now: datetime) -> None:
    """Refuse a box that cannot open everything the store may hold; otherwise make sure the store
    knows the box's current key (the first process on a new store, or the start of a rotation)."""
    wait_for_duty_lock(session, Duty.SEALING_KEYS)
    stored = stored_fingerprints(session)
    unknown = [f for f in stored if f not in box.fingerprints]
    if unknown:
        raise SecretKeyMismatch(
            f"SLUICE_SECRET_KEY (fingerprint {short(box.fingerprint)}) is not the key this store's "
            f"secrets were sealed with (fingerprint {', '.join(short(f) for f in unknown)}). Set "
            "SLUICE_SECRET_KEY to the key the other servers and workers of this store use; while a key "
            "rotation is under way, also name the old key in SLUICE_OLD_SECRET_KEYS "
            "(docs/deploy.md, 'Secret key')."
        )
    if box.fingerprint not in stored:
        session.add(SealingKey(fingerprint=box.fingerprint, added_at=now))
        session.flush()


def rotate_sealed_secrets(factory: sessionmaker[Session], box: SecretBox, *, now: datetime) -> int:
    """Seal every stored secret again under the box's current key (each batch in its own transaction,
    its rows locked), then forget every other key's fingerprint. Returns how many were re-sealed."""
    with transaction(factory) as session:
        check_and_record_key(session, box, now=now)
    resealed = 0
    after = ""
    while True:
        with transaction(factory) as session:
            rows = session.scalars(
                select(Grant)
                .where(Grant.credentials.is_not(None), Grant.id > after)
                .order_by(Grant.id)
                .limit(RESEAL_BATCH)
                .with_for_update()
            ).all()
            for grant in rows:
                if grant.credentials is not None:  # a revoke may have cleared it meanwhile
                    grant.credentials = box.reseal(grant.credentials)
                    resealed += 1
            after = rows[-1].id if rows else after
            done = len(rows) < RESEAL_BATCH
        if done:
            break
    with transaction(factory) as session:
        wait_for_duty_lock(session, Duty.SEALING_KEYS)
        session.execute(delete(SealingKey).where(SealingKey.fingerprint != box.fingerprint))
    return resealed
