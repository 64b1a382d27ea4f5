"""`sluice config export`: the store as a config file that parses, and plans clean against the store
it came from; objects made through the API are in it, people a directory keeps are not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sluice.cli.main import app
from sluice.services.config.apply import apply_config, plan_config
from sluice.services.config.export import export_config
from sluice.services.config.file import parse_config
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Base, Identity, Integration
from tests.services.test_config_targeting import TARGETING
from tests.services.test_config_webhooks import HOOKS

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCHEDULE = (
    "schedules:\n  - name: payments\n    members: [alice@example.com, bob@example.com]\n    rotation: 1d\n"
)
EVERYTHING = TARGETING + HOOKS + SCHEDULE


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    Base.metadata.create_all(engine)
    yield make_session_factory(engine)
    engine.dispose()


def test_the_export_parses_and_plans_clean(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        apply_config(session, parse_config(EVERYTHING, "sluice.yaml", session=session), actor="a", now=NOW)
        session.add(
            Identity(
                id="id_scim",
                email="scim@example.com",
                name="From SCIM",
                attributes={},
                source="scim:okta",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with transaction(factory) as session:
        text = yaml.safe_dump(export_config(session), sort_keys=False)
    exported = yaml.safe_load(text)
    assert [i["name"] for i in exported["integrations"]] == ["groups", "local-pg"]
    assert {"scopes", "bundles", "schedules", "webhooks", "flows", "groups"} <= set(exported)
    assert "scim@example.com" not in text  # the directory keeps it, not the file
    alice = next(i for i in exported["identities"] if i["email"] == "alice@example.com")
    assert alice["groups"] == ["engineering"] and alice["manager"] == "carol@example.com"
    with transaction(factory) as session:
        plan = plan_config(session, parse_config(text, "exported.yaml", session=session))
    assert plan.is_empty, (plan.created, plan.changed, plan.removed)


def test_an_integration_made_through_the_api_is_exported(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        session.add(
            Integration(
                id="int_api",
                name="api-made",
                kind="builtin_groups",
                config={"groups": [{"name": "x"}]},
                sync_interval_seconds=600,
                source="api",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with transaction(factory) as session:
        document = export_config(session)
    assert document["integrations"] == [
        {
            "name": "api-made",
            "kind": "builtin_groups",
            "sync_interval": "10m",
            "config": {"groups": [{"name": "x"}]},
        }
    ]


def test_the_command_writes_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_HOME", str(tmp_path))
    config = tmp_path / "sluice.yaml"
    config.write_text(EVERYTHING)
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["apply", "-f", str(config)]).exit_code == 0
    result = runner.invoke(app, ["config", "export"])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "exported.yaml"
    exported.write_text(result.stdout)
    planned = runner.invoke(app, ["plan", "-f", str(exported)])
    assert planned.exit_code == 0 and "no changes" in planned.stdout, planned.output
