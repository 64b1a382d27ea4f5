"""Webhooks in the config file: checked at their line, applied idempotently, never holding a secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sluice.services.audit.webhook_signing import new_secret
from sluice.services.config.apply import Plan, apply_config
from sluice.services.config.file import ConfigError, ConfigProblem, parse_config
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import AuditEvent, Base, Webhook
from tests.services.config_samples import GOOD, line_of

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

HOOKS = """\
webhooks:
  - name: pager
    url: https://hooks.example.com/sluice
    secret_env: PAGER_HOOK_SECRET
    topics: ["grant.revoke_failed", "request.*"]
  - name: audit-log
    url: http://127.0.0.1:9000/events
    secret_env: AUDIT_HOOK_SECRET
"""


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(autouse=True)
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAGER_HOOK_SECRET", new_secret())
    monkeypatch.setenv("AUDIT_HOOK_SECRET", new_secret())


def apply_text(factory: sessionmaker[Session], text: str, now: datetime = NOW) -> Plan:
    with transaction(factory) as session:
        doc = parse_config(text, "sluice.yaml", session=session)
        return apply_config(session, doc, actor="admin@example.com", now=now)


def stored(factory: sessionmaker[Session]) -> dict[str, tuple[str, str, list[str]]]:
    with transaction(factory) as session:
        return {w.name: (w.url, w.secret_env, w.topics) for w in session.scalars(select(Webhook))}


def test_webhooks_apply_idempotently_and_are_audited(factory: sessionmaker[Session]) -> None:
    text = GOOD + HOOKS
    plan = apply_text(factory, text)
    assert {(e.kind, e.name) for e in plan.created} >= {("webhook", "pager"), ("webhook", "audit-log")}
    assert stored(factory) == {
        "pager": (
            "https://hooks.example.com/sluice",
            "PAGER_HOOK_SECRET",
            ["grant.revoke_failed", "request.*"],
        ),
        "audit-log": ("http://127.0.0.1:9000/events", "AUDIT_HOOK_SECRET", ["*"]),
    }
    assert apply_text(factory, text).is_empty

    changed = apply_text(factory, text.replace('"request.*"', '"request.escalated"'), NOW + timedelta(1))
    assert [(e.kind, e.name) for e in changed.changed] == [("webhook", "pager")]
    assert changed.notes[("webhook", "pager")] == "topics"

    removed = apply_text(factory, GOOD, NOW + timedelta(2))
    assert {(e.kind, e.name) for e in removed.removed} == {("webhook", "pager"), ("webhook", "audit-log")}
    assert stored(factory) == {}
    with transaction(factory) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.subject_type == "webhook")).all()
        assert [e.action for e in events].count("admin.created") == 2
        assert all("key" not in str(e.details) for e in events)  # names of variables only


def test_a_new_url_or_key_wakes_a_resting_webhook(factory: sessionmaker[Session]) -> None:
    apply_text(factory, GOOD + HOOKS)
    with transaction(factory) as session:
        hook = session.scalars(select(Webhook).where(Webhook.name == "pager")).one()
        hook.failures, hook.retry_at = 7, NOW + timedelta(minutes=10)
    apply_text(factory, GOOD + HOOKS.replace("hooks.example.com", "hooks2.example.com"), NOW + timedelta(1))
    with transaction(factory) as session:
        hook = session.scalars(select(Webhook).where(Webhook.name == "pager")).one()
        assert (hook.failures, hook.retry_at) == (0, None)


def test_an_unset_key_variable_is_a_warning_at_apply(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAGER_HOOK_SECRET")
    plan = apply_text(factory, GOOD + HOOKS)
    assert any("PAGER_HOOK_SECRET is not set here" in w for w in plan.warnings), plan.warnings
    assert "pager" in stored(factory)


def test_a_variable_set_here_to_no_whsec_secret_is_refused_at_its_line(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_HOOK_SECRET", "audit-key")
    with pytest.raises(ConfigError) as refused:
        apply_text(factory, GOOD + HOOKS)
    (problem,) = refused.value.problems
    assert problem.path == "webhooks[1].secret_env", problem
    assert problem.line == line_of(GOOD + HOOKS, "secret_env: AUDIT_HOOK_SECRET")
    assert "AUDIT_HOOK_SECRET must hold a Standard Webhooks secret" in problem.message
    assert "sluice webhooks secret" in problem.message and "audit-key" not in problem.message
    assert stored(factory) == {}


BAD = [
    pytest.param(
        "ftp://hooks.example.com/x",
        "url: ftp",
        "webhooks[0].url",
        "must be an http:// or https:// URL with a host",
        id="not-http",
    ),
    pytest.param(
        "https://bot:hunter2@hooks.example.com/x",
        "url: https://bot",
        "webhooks[0].url",
        "a webhook url holds no credentials",
        id="credentials-in-url",
    ),
]


@pytest.mark.parametrize(("url", "needle", "path", "message"), BAD)
def test_a_bad_url_is_reported_at_its_line(url: str, needle: str, path: str, message: str) -> None:
    text = GOOD + HOOKS.replace("https://hooks.example.com/sluice", url)
    problem = _only_problem(text, path)
    assert problem.line == line_of(text, needle)
    assert message in problem.message
    assert "hunter2" not in problem.message


def _only_problem(text: str, path: str) -> ConfigProblem:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    found = [p for p in raised.value.problems if p.path == path]
    assert found, str(raised.value)
    assert f"sluice.yaml:{found[0].line}:{found[0].col}: {path}: " in str(raised.value)
    return found[0]


def test_other_webhook_mistakes_are_reported_at_their_lines() -> None:
    text = (
        GOOD
        + HOOKS.replace("secret_env: PAGER_HOOK_SECRET", "secret_env: s3cr3t-value!")
        .replace('"request.*"', '"requests.*"')
        .replace("name: audit-log", "name: pager")
        + "    topcs: [x]\n"
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    by_path = {p.path: p for p in raised.value.problems}
    assert "name of an environment variable" in by_path["webhooks[0].secret_env"].message
    assert by_path["webhooks[0].secret_env"].line == line_of(text, "secret_env: s3cr3t")
    assert "topic 'requests.*' matches no event" in by_path["webhooks[0].topics[1]"].message
    assert "unknown key 'topcs'" in by_path["webhooks[1].topcs"].message


def test_a_webhook_declared_twice_is_reported_at_the_second() -> None:
    text = GOOD + HOOKS.replace("name: audit-log", "name: pager")
    problem = _only_problem(text, "webhooks[1].name")
    assert problem.line == line_of(text, "name: pager\n    url: http://127")
    assert "webhook 'pager' is declared twice (first at line" in problem.message


def test_an_empty_topic_list_is_refused() -> None:
    text = GOOD + HOOKS.replace('topics: ["grant.revoke_failed", "request.*"]', "topics: []")
    assert "leave topics out" in _only_problem(text, "webhooks[0].topics").message
