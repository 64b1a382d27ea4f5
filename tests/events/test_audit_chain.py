"""The audit log is a hash chain: editing, deleting or reordering an event is found by `verify_chain`
and `sluice audit verify`, on SQLite and PostgreSQL, and a chain written by several processes at once
verifies."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sluice.cli.main import app
from sluice.events.audit import Action, new_event, record
from sluice.events.audit_batch import record_many
from sluice.events.chain import GENESIS, Head, event_hash, verify_chain
from sluice.events.head_export import AuditHeadExport
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AuditEvent, OutboxMessage
from tests.conftest import Clock
from tests.migrated import migrate_new_store

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> tuple[Engine, sessionmaker[Session]]:
    migrate_new_store(store_url)
    engine = make_engine(store_url)
    return engine, make_session_factory(engine)


def _write(factory: sessionmaker[Session], count: int, *, actor: str = "alice@example.com") -> None:
    for number in range(count):
        with transaction(factory) as session:
            record(
                session,
                now=START + timedelta(seconds=number),
                actor=actor,
                action=Action.OBJECT_CHANGED,
                subject_type="flow",
                subject_id=f"flow-{number}",
                reason="nul-free ünïcode reason",
                kind="flow",
                name=f"flow-{number}",
            )


def _verify(factory: sessionmaker[Session], expect: Head | None = None):  # type: ignore[no-untyped-def]
    with transaction(factory) as session:
        return verify_chain(session, expect=expect, batch=3)


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement), params)


def _delete_events(engine: Engine, where: str) -> None:
    _sql(engine, f"DELETE FROM outbox WHERE event_id IN (SELECT id FROM audit_events WHERE {where})")
    _sql(engine, f"DELETE FROM audit_events WHERE {where}")


def test_an_untouched_chain_verifies(store) -> None:  # type: ignore[no-untyped-def]
    _engine, factory = store
    _write(factory, 7)
    report = _verify(factory)
    assert report.ok, report.problem
    assert report.checked == 7 and report.head.seq == 7
    with transaction(factory) as session:
        first = session.query(AuditEvent).filter_by(seq=1).one()
        assert first.prev_hash == GENESIS
        assert first.hash == event_hash(first, seq=1, prev_hash=GENESIS)


def test_several_events_in_one_transaction_chain_in_recorded_order(store) -> None:  # type: ignore[no-untyped-def]
    _engine, factory = store
    with transaction(factory) as session:
        for number in range(4):
            record(
                session,
                now=START,
                actor="sluice",
                action=Action.OBJECT_CREATED,
                subject_type="flow",
                subject_id=f"f{number}",
                kind="flow",
                name=f"f{number}",
            )
    with transaction(factory) as session:
        subjects = [e.subject_id for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert subjects == ["f0", "f1", "f2", "f3"]
    assert _verify(factory).ok


def test_events_written_in_bulk_keep_their_recorded_places_and_their_outbox_rows(store) -> None:  # type: ignore[no-untyped-def]
    _engine, factory = store

    def created(name: str) -> dict[str, object]:
        return {
            "now": START,
            "actor": "sluice",
            "action": Action.OBJECT_CREATED,
            "subject_type": "flow",
            "subject_id": name,
            "kind": "flow",
            "name": name,
        }

    with transaction(factory) as session:
        record(session, **created("first"))  # type: ignore[arg-type]
        record_many(session, [new_event(**created(name)) for name in ("bulk-1", "bulk-2")])  # type: ignore[arg-type]
        record(session, **created("last"))  # type: ignore[arg-type]
    with transaction(factory) as session:
        subjects = [e.subject_id for e in session.query(AuditEvent).order_by(AuditEvent.seq)]
        linked = {
            m.event.subject_id: (m.topic, m.payload["subject"]["id"], m.attempts)
            for m in session.query(OutboxMessage)
        }
    assert subjects == ["first", "bulk-1", "bulk-2", "last"]
    assert linked == {name: ("admin.created", name, 0) for name in subjects}
    assert _verify(factory).ok


def test_an_edited_event_is_found(store) -> None:  # type: ignore[no-untyped-def]
    engine, factory = store
    _write(factory, 6)
    _sql(engine, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 4")
    report = _verify(factory)
    assert not report.ok
    assert "seq 4 was altered" in (report.problem or "")
    with transaction(factory) as session:
        assert report.problem_event_id == session.query(AuditEvent).filter_by(seq=4).one().id


def test_a_deleted_event_is_found(store) -> None:  # type: ignore[no-untyped-def]
    engine, factory = store
    _write(factory, 6)
    _delete_events(engine, "seq = 3")
    report = _verify(factory)
    assert not report.ok and "seq 3 to 3 are missing" in (report.problem or "")


def test_deleting_the_newest_events_is_found(store) -> None:  # type: ignore[no-untyped-def]
    engine, factory = store
    _write(factory, 5)
    _delete_events(engine, "seq >= 4")
    report = _verify(factory)
    assert not report.ok and "newest event(s) were deleted" in (report.problem or "")


def test_reordered_events_are_found(store) -> None:  # type: ignore[no-untyped-def]
    engine, factory = store
    _write(factory, 6)
    _sql(engine, "UPDATE audit_events SET seq = -1 WHERE seq = 2")
    _sql(engine, "UPDATE audit_events SET seq = 2 WHERE seq = 5")
    _sql(engine, "UPDATE audit_events SET seq = 5 WHERE seq = -1")
    report = _verify(factory)
    assert not report.ok and "seq 2 is out of place" in (report.problem or "")


def test_a_rewritten_chain_is_found_against_an_exported_head(store) -> None:  # type: ignore[no-untyped-def]
    engine, factory = store
    _write(factory, 3)
    clock = Clock(START)
    export = AuditHeadExport(factory, clock=clock, every=timedelta(minutes=10))
    assert export.run() is None  # not due yet
    clock.advance(minutes=10)
    exported = export.run()
    with transaction(factory) as session:
        third = session.query(AuditEvent).filter_by(seq=3).one()
    assert exported == Head(3, third.hash or "")
    clock.advance(minutes=10)
    assert export.run() is None  # nothing new since its own export event
    _write(factory, 2)
    # Someone with write access edits event 2 and recomputes every hash after it, head included.
    _sql(engine, "UPDATE audit_events SET actor = 'mallory@example.com' WHERE seq = 2")
    with transaction(factory) as session:
        prev = GENESIS
        for item in session.query(AuditEvent).order_by(AuditEvent.seq):
            item.prev_hash = prev
            item.hash = prev = event_hash(item, seq=item.seq or 0, prev_hash=prev)
        session.execute(text("UPDATE audit_chain SET hash = :h"), {"h": prev})
    assert _verify(factory).ok  # the chain alone cannot tell
    report = _verify(factory, expect=exported)
    assert not report.ok and "differs from the exported head" in (report.problem or "")


def test_the_head_export_is_an_audit_event_for_webhooks(store) -> None:  # type: ignore[no-untyped-def]
    _engine, factory = store
    _write(factory, 2)
    clock = Clock(START)
    export = AuditHeadExport(factory, clock=clock, every=timedelta(seconds=1))
    clock.advance(seconds=1)
    head = export.run()
    with transaction(factory) as session:
        last = session.query(AuditEvent).order_by(AuditEvent.seq.desc()).first()
        assert last is not None and last.action == "audit.head"
        assert last.details == {"head": str(head)}
        outbox = session.execute(text("SELECT topic FROM outbox WHERE event_id = :i"), {"i": last.id})
        assert outbox.scalar_one() == "audit.head"
    assert _verify(factory, expect=head).ok


def _writer(url: str, actor: str, count: int) -> None:
    engine = make_engine(url)
    _write(make_session_factory(engine), count, actor=actor)
    engine.dispose()


def test_three_processes_writing_at_once_build_one_chain(store, store_url: str) -> None:  # type: ignore[no-untyped-def]
    _engine, factory = store
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=_writer, args=(store_url, f"server{n}@example.com", 40)) for n in range(3)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    report = _verify(factory)
    assert report.ok, report.problem
    assert report.checked == 120


def test_writers_that_remember_an_old_head_still_build_one_chain(store, store_url: str) -> None:  # type: ignore[no-untyped-def]
    """Each process chains onto the head it last wrote, in one statement; when another writer, or a
    transaction rolled back, moved the head meanwhile, it chains onto the head that statement found."""
    engine, factory = store
    other = make_session_factory(make_engine(store_url))  # a second process's engine on the store
    chain_statements: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "audit_chain" in statement:
            chain_statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    _write(factory, 2)  # the first flush reads the head; the second chains onto the one it wrote
    assert len(chain_statements) == 3
    chain_statements.clear()
    _write(other, 2, actor="bob@example.com")  # the head moves under the first engine's memory
    _write(factory, 1)
    assert len(chain_statements) == 2  # the remembered head was gone: the hash is written after
    with pytest.raises(RuntimeError), transaction(factory) as session:
        _write_in(session, "rolled-back")
        session.flush()
        raise RuntimeError("the transaction ends without a commit")
    _write(factory, 2)
    _write(other, 1, actor="bob@example.com")
    report = _verify(factory)
    assert report.ok, report.problem
    assert report.checked == 8 and report.head.seq == 8


def _write_in(session: Session, name: str) -> None:
    record(
        session, now=START, actor="alice@example.com", action=Action.OBJECT_CHANGED,
        subject_type="flow", subject_id=name, kind="flow", name=name,
    )  # fmt: skip


def test_sluice_audit_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SLUICE_DATABASE_URL", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'sluice.db'}")
    _write(make_session_factory(engine), 3)
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "audit chain intact: 3 event(s), head 3:" in ok.stdout
    _sql(engine, "UPDATE audit_events SET actor = 'mallory@example.com' WHERE seq = 2")
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1
    assert broken.stderr.startswith("error: audit chain broken: event seq 2 was altered")
    bad = runner.invoke(app, ["audit", "verify", "--expect", "banana"])
    assert bad.exit_code == 2 and "SEQ:HASH" in bad.stderr
