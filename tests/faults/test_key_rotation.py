"""`sluice keys rotate` re-seals every stored credential under a new key while grants are live, on a
SQLite and on a PostgreSQL store: processes holding the new key (and the old one, for reading) are
accepted during the rotation, one holding only the old key is refused from then on, and afterwards the
new key alone opens every credential, each still the password that logs in to the target."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sluice.domain.errors import SluiceError
from sluice.domain.states import Actual
from sluice.runtime.tuning import Tuning
from sluice.services.grants.secret_keys import (
    SecretKeyMismatch,
    check_and_record_key,
    rotate_sealed_secrets,
    stored_fingerprints,
)
from sluice.services.grants.secrets import SecretBox, generate_key
from sluice.store.db import transaction
from sluice.worker.loop import Worker
from tests.conftest import Clock
from tests.faults.harness import Setup, can_read, drop_roles

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, make_pg_database: Callable[[str], str]
) -> Iterator[Setup]:
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else make_pg_database("sluice_kr")
    made = Setup.create(url, tmp_path / "home")
    try:
        yield made
    finally:
        made.engine.dispose()
        for name, prefix in made.prefixes.items():
            admin_url, database = made.targets[name]
            with contextlib.suppress(psycopg.OperationalError):
                drop_roles(admin_url, prefix, [database])


def _check(store: Setup, box: SecretBox) -> None:
    with transaction(store.factory) as session:
        check_and_record_key(session, box, now=datetime.now(UTC))


def _worker(store: Setup, box: SecretBox, clock: Clock) -> Worker:
    return Worker(
        store.factory,
        hub=store.hub(),
        box=box,
        clock=clock,
        worker_id="w1",
        sync_inventory=False,
        tuning=Tuning(),
    )


def test_rotation_reseals_every_credential_of_live_grants(
    store: Setup, target_database: Callable[..., str], postgres_admin_url: str
) -> None:
    database = target_database()
    store.add_postgres("pg", postgres_admin_url, database)
    clock = Clock(datetime.now(UTC))
    old = store.box
    _check(store, old)  # the first process on the store records its key
    store.add_grants("pg", [clock() + timedelta(hours=1)] * 3, now=clock())
    _worker(store, old, clock).run_once()

    new_key = generate_key()
    during = SecretBox(new_key, [store.secret_key])
    _check(store, during)  # restarted with the new key, the old one still read: accepted
    with transaction(store.factory) as session:
        assert set(stored_fingerprints(session)) == {old.fingerprint, during.fingerprint}
    with pytest.raises(SecretKeyMismatch, match="SLUICE_OLD_SECRET_KEYS"):
        _check(store, old)  # it could not open what the new key seals now
    # A grant made during the rotation is sealed under the new key already.
    store.add_grants("pg", [clock() + timedelta(hours=1)], now=clock())
    _worker(store, during, clock).run_once()
    grants = store.grants()
    assert len(grants) == 4 and all(g.actual == Actual.ACTIVE and g.credentials for g in grants)
    passwords = {g.id: during.open(g.credentials or "") for g in grants}

    assert rotate_sealed_secrets(store.factory, during, now=clock()) == 4

    new_only = SecretBox(new_key)
    for grant in store.grants():
        password = new_only.open(grant.credentials or "")
        assert password == passwords[grant.id]
        assert can_read(postgres_admin_url, database, grant.principal, password)
        with pytest.raises(SluiceError, match="cannot be decrypted"):
            old.open(grant.credentials or "")
    with transaction(store.factory) as session:
        assert stored_fingerprints(session) == [new_only.fingerprint]
    _check(store, new_only)
    with pytest.raises(SecretKeyMismatch):
        _check(store, old)
    # Rotating again with the new key alone changes nothing that matters and still opens everything.
    assert rotate_sealed_secrets(store.factory, new_only, now=clock()) == 4
    assert all(new_only.open(g.credentials or "") == passwords[g.id] for g in store.grants())


def test_rotating_with_a_key_that_cannot_read_the_store_is_refused(store: Setup) -> None:
    _check(store, store.box)
    stranger = SecretBox(generate_key())
    with pytest.raises(SecretKeyMismatch, match="Set SLUICE_SECRET_KEY"):
        rotate_sealed_secrets(store.factory, stranger, now=datetime.now(UTC))
    with transaction(store.factory) as session:
        assert stored_fingerprints(session) == [store.box.fingerprint]
