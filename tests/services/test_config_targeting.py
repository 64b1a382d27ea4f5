"""`scopes:` and `bundles:` in the config file: checked with positions, applied idempotently, and used
by flows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sluice.services.config.apply import apply_config
from sluice.services.config.file import ConfigError, parse_config
from sluice.services.targeting.bundles import current_flows, load_bundles, load_scopes
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Base
from tests.services.config_samples import GOOD, edit, line_of

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

TARGETING = (
    GOOD
    + """\
  - name: analysts
    requesters: [{group: engineering}]
    targets:
      - bundle: analyst
      - scope: pii-tables
        permissions: [read]
scopes:
  - name: pii-tables
    description: Tables holding personal data
    query: 'type = "table" and tag.pii = "true" and not name in ["secrets"]'
bundles:
  - name: analyst
    targets:
      - integration: local-pg
        type: table
        select:
          under: [local-pg/sluice_demo]
          tags: ["pii=true"]
          exclude: {names: [local-pg/sluice_demo/public/secrets]}
        permissions: [read]
      - scope: pii-tables
        permissions: [read, write]
"""
)


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_scopes_and_bundles_apply_idempotently(factory: sessionmaker[Session]) -> None:
    doc = parse_config(TARGETING, "sluice.yaml")
    with transaction(factory) as session:
        plan = apply_config(session, doc, actor="admin", now=NOW)
    assert {(e.kind, e.name) for e in plan.created} >= {("scope", "pii-tables"), ("bundle", "analyst")}
    with transaction(factory) as session:
        assert apply_config(session, doc, actor="admin", now=NOW).is_empty
        assert set(load_scopes(session)) == {"pii-tables"}
        assert len(load_bundles(session)["analyst"].targets) == 2
        flow = next(f for f in current_flows(session) if f.name == "analysts")
        assert [t.integration for t in flow.targets] == ["local-pg", None, None]
    changed = edit(TARGETING, 'tag.pii = "true" and not', 'tag.pii = "yes" and not')
    with transaction(factory) as session:
        plan = apply_config(session, parse_config(changed, "sluice.yaml"), actor="admin", now=NOW)
    assert [(e.kind, e.name) for e in plan.changed] == [("scope", "pii-tables")]
    without = TARGETING.split("scopes:")[0].replace(
        "      - bundle: analyst\n      - scope: pii-tables\n        permissions: [read]\n",
        "      - integration: local-pg\n        type: table\n        permissions: [read]\n",
    )
    with transaction(factory) as session:
        plan = apply_config(session, parse_config(without, "sluice.yaml"), actor="admin", now=NOW)
    assert {(e.kind, e.name) for e in plan.removed} == {("scope", "pii-tables"), ("bundle", "analyst")}


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            "      - bundle: analyst",
            "      - bundle: analysts",
            "bundle: analysts",
            "bundle 'analysts' is not declared",
        ),
        (
            "      - scope: pii-tables\n        permissions: [read]\n",
            "      - scope: pii\n        permissions: [read]\n",
            "scope: pii\n",
            "scope 'pii' is not declared",
        ),
        ('query: \'type = "table"', 'query: \'type == "table"', "query: 'type ==", "column 7"),
        (
            "      - integration: local-pg\n        type: table\n        select:",
            "      - integration: local-pg\n        type: tabel\n        select:",
            "type: tabel",
            "no resource type 'tabel'",
        ),
        ('          tags: ["pii=true"]', '          tags: ["=true"]', 'tags: ["=true"]', "tag rule"),
        ("          exclude: {names:", "          exclude: {nmes:", "exclude: {nmes", "nmes"),
    ],
)
def test_reference_and_shape_errors_point_at_their_line(
    old: str, new: str, needle: str, message: str
) -> None:
    text = edit(TARGETING, old, new)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "sluice.yaml")
    problems = caught.value.problems
    assert any(message in p.message for p in problems), problems
    assert any(p.line == line_of(text, needle) for p in problems if message in p.message), problems


def test_a_bundle_inside_a_bundle_is_refused() -> None:
    text = edit(
        TARGETING,
        "      - scope: pii-tables\n        permissions: [read, write]\n",
        "      - bundle: other\n",
    )
    with pytest.raises(ConfigError, match="cannot contain a bundle"):
        parse_config(text, "sluice.yaml")
