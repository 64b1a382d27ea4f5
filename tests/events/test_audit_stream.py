"""Audit events reach a syslog collector (RFC 5424 over TCP and TLS, octet-counted) and a JSON-lines
file, in chain order, each once per sink while the sink is up, and again after it comes back."""

from __future__ import annotations

import json
import re
import socket
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sluice.events.stream import AuditStream, JsonLinesSink, SyslogSink, sinks_from_env
from sluice.store.db import make_engine, make_session_factory, transaction
from tests.conftest import Clock
from tests.events.test_audit_chain import _write
from tests.migrated import migrate_new_store
from tests.syslog_receiver import running_collector
from tests.tls_files import self_signed

RFC5424 = re.compile(
    rb"^<109>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ sluice \d+ (?P<msgid>[!-~]{1,32}) "
    rb'\[sluice@32473 seq="(?P<seq>\d+)" hash="(?P<hash>[0-9a-f]{64})" actor="(?P<actor>[^"]*)" '
    rb'subject="(?P<subject>[^"]*)"\] \xef\xbb\xbf(?P<json>\{.*\})$',
    re.DOTALL,
)


@pytest.fixture
def factory(store_url: str) -> sessionmaker[Session]:
    migrate_new_store(store_url)
    engine = make_engine(store_url)
    return make_session_factory(engine)


def _parsed(message: bytes) -> dict[str, object]:
    match = RFC5424.match(message)
    assert match, message[:200]
    body = json.loads(match["json"])
    assert int(match["seq"]) == body["seq"] and match["hash"].decode() == body["hash"]
    assert match["msgid"].decode() == body["action"]
    assert match["actor"].decode() == body["actor"]
    return body


def test_events_reach_a_syslog_collector_once_in_chain_order(factory, clock: Clock) -> None:  # type: ignore[no-untyped-def]
    _write(factory, 3)
    with running_collector() as collector:
        stream = AuditStream(factory, [SyslogSink(f"tcp://127.0.0.1:{collector.port}")], clock=clock)
        assert stream.run() == 3
        assert stream.run() == 0  # nothing new: nothing sent again
        _write(factory, 2, actor="bob@example.com")
        assert stream.run() == 2
        stream.close()
        _wait_for(collector, 5)
    bodies = [_parsed(m) for m in collector.received()]
    assert [b["seq"] for b in bodies] == [1, 2, 3, 4, 5]
    assert bodies[-1]["actor"] == "bob@example.com"
    assert bodies[0]["subject"] == {"type": "flow", "id": "flow-0"}
    assert bodies[0]["reason"] == "nul-free ünïcode reason"


def test_syslog_over_tls_verifies_the_collector(factory, clock: Clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = self_signed(tmp_path)
    _write(factory, 2)
    with running_collector(tls=(cert, key)) as collector:
        untrusted = AuditStream(factory, [SyslogSink(f"tls://127.0.0.1:{collector.port}")], clock=clock)
        assert untrusted.run() == 0  # the collector's certificate is not trusted: nothing sent
        with transaction(factory) as session:
            assert untrusted.next_due(session, clock()) is not None
        trusted = AuditStream(
            factory, [SyslogSink(f"tls://127.0.0.1:{collector.port}", ca_file=str(cert))], clock=clock
        )
        assert trusted.run() == 2
        trusted.close()
        _wait_for(collector, 2)
    assert [_parsed(m)["seq"] for m in collector.received()] == [1, 2]


def test_a_collector_that_was_down_gets_everything(factory, clock: Clock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _write(factory, 2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lines = tmp_path / "audit.jsonl"
    down = SyslogSink(f"tcp://127.0.0.1:{port}", timeout=1)
    stream = AuditStream(factory, [down, JsonLinesSink(lines)], clock=clock)
    assert stream.run() == 2  # the file took both; syslog took none
    with transaction(factory) as session:
        assert stream.next_due(session, clock()) == clock.now + timedelta(seconds=10)
    assert stream.run() == 0  # syslog waits for its retry time
    with running_collector() as collector:
        stream.states[0].sink = SyslogSink(f"tcp://127.0.0.1:{collector.port}")
        stream.states[0].sink.name = down.name  # the same sink, back at another port in this test
        clock.advance(seconds=11)
        assert stream.run() == 2
        stream.close()
        _wait_for(collector, 2)
    assert [_parsed(m)["seq"] for m in collector.received()] == [1, 2]
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["seq"] for r in records] == [1, 2]
    assert stat.S_IMODE(lines.stat().st_mode) == 0o600


def test_sinks_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLUICE_AUDIT_SYSLOG", "tls://logs.example.com:6514")
    monkeypatch.setenv("SLUICE_AUDIT_JSONL", str(tmp_path / "a.jsonl"))
    names = [s.name for s in sinks_from_env()]
    assert names == ["syslog:tls://logs.example.com:6514", f"jsonl:{tmp_path / 'a.jsonl'}"]
    monkeypatch.setenv("SLUICE_AUDIT_SYSLOG", "udp://logs.example.com")
    with pytest.raises(ValueError, match="tcp://HOST:PORT or tls://HOST:PORT"):
        sinks_from_env()


def _wait_for(collector, count: int) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while len(collector.received()) < count and time.monotonic() < deadline:
        time.sleep(0.02)
