"""`sluice test` and `sluice inventory export`: policy tests against a config file and a snapshot,
with no store and no target, judged by the services that judge real requests."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke
from tests.services.config_samples import GOOD

SNAPSHOT = {
    "format": "sluice-inventory/1",
    "taken_at": "2026-01-05T09:00:00+00:00",
    "integrations": [
        {
            "name": "local-pg",
            "kind": "postgresql",
            "resources": [
                {"type": "database", "name": "sluice_demo", "path": "local-pg/sluice_demo"},
                {
                    "type": "schema",
                    "name": "public",
                    "path": "local-pg/sluice_demo/public",
                    "parent": "local-pg/sluice_demo",
                },
                {
                    "type": "table",
                    "name": "orders",
                    "path": "local-pg/sluice_demo/public/orders",
                    "parent": "local-pg/sluice_demo/public",
                },
                {
                    "type": "table",
                    "name": "customers",
                    "path": "local-pg/sluice_demo/public/customers",
                    "parent": "local-pg/sluice_demo/public",
                    "tags": {"pii": "true"},
                },
            ],
        }
    ],
}

PASSING = """\
tests:
  - name: alice reads orders
    who: alice@example.com
    may_request: read
    resource: local-pg/sluice_demo/public/orders
  - name: nobody in engineering writes personal data
    who: bob@example.com
    may_not_request: write
    any_resource: {integration: local-pg, type: table, select: {tags: ["pii=true"]}}
  - name: carol approves alice's reads
    who: alice@example.com
    permission: read
    resource: local-pg/sluice_demo/public/orders
    approvers_include: [carol@example.com]
    approvers_exclude: [alice@example.com]
"""

FAILING = """\
tests:
  - name: carol reads orders
    who: carol@example.com
    may_request: read
    resource: local-pg/sluice_demo/public/customers
  - name: reads need nobody
    who: alice@example.com
    auto_approved: read
    resource: local-pg/sluice_demo/public/orders
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "sluice.yaml").write_text(GOOD)  # its integration names an env var; nothing connects
    (tmp_path / "inventory.json").write_text(json.dumps(SNAPSHOT))
    return tmp_path


def run(invoke: Invoke, files: Path, tests: str, *more: str) -> object:
    (files / "tests.yaml").write_text(tests)
    return invoke(
        "test",
        "-f",
        str(files / "tests.yaml"),
        "--config",
        str(files / "sluice.yaml"),
        "--inventory",
        str(files / "inventory.json"),
        *more,
    )


def test_expectations_that_hold_pass_with_the_deciding_flow_named(invoke: Invoke, files: Path) -> None:
    result = run(invoke, files, PASSING, "--junit", str(files / "junit.xml"))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert "PASS alice reads orders: allowed by flow engineering-read-pg" in out
    assert "refused on all 1 matching resources" in out
    assert "3 passed, 0 failed" in out
    suite = ET.parse(files / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"


def test_expectations_that_do_not_hold_fail_with_the_reason_and_junit_says_so(
    invoke: Invoke, files: Path
) -> None:
    result = run(invoke, files, FAILING, "--junit", str(files / "junit.xml"), "--json")
    assert result.exit_code == 1
    outcomes = {o["name"]: o for o in json.loads(result.stdout)}  # type: ignore[attr-defined]
    assert not outcomes["carol reads orders"]["passed"]
    assert "engineering-read-pg" in outcomes["carol reads orders"]["detail"]
    assert (
        outcomes["reads need nobody"]["detail"]
        == "flow engineering-read-pg needs approval by carol@example.com"
    )
    cases = ET.parse(files / "junit.xml").getroot().iter("testcase")
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert all(f is not None for f in failed.values()) and len(failed) == 2


def test_a_bad_tests_file_points_at_the_line(invoke: Invoke, files: Path) -> None:
    broken = "tests:\n  - name: x\n    who: alice@example.com\n    may_request: read\n"
    result = run(invoke, files, broken)
    assert result.exit_code == 2
    assert "tests.yaml:2:5: tests[0]: name the resource with exactly one of `resource`" in result.stderr  # type: ignore[attr-defined]


def test_a_snapshot_that_is_not_one_is_refused_clearly(invoke: Invoke, files: Path) -> None:
    (files / "inventory.json").write_text('{"format": "something else"}')
    result = run(invoke, files, PASSING)
    assert result.exit_code == 2
    assert "inventory.json: format" in result.stderr and "sluice inventory export" in result.stderr  # type: ignore[attr-defined]


def test_export_writes_what_the_tests_read(invoke: Invoke, files: Path, home: Path) -> None:
    """A snapshot exported from a store with a synced demo inventory is read back by `sluice test`."""
    from sluice.cli import store_ops
    from sluice.connectors.base import DiscoveredResource
    from sluice.services.config.apply import apply_config
    from sluice.services.config.file import parse_config
    from sluice.services.targeting.inventory import apply_discovery
    from sluice.store.db import transaction
    from sluice.store.tables import Integration
    from tests.conftest import Clock

    runtime = store_ops.open_runtime()
    store_ops.migrate_store(runtime)
    now = Clock()()
    with transaction(runtime.factory) as session:
        apply_config(session, parse_config(GOOD, "sluice.yaml"), actor="t", now=now)
        found = [
            DiscoveredResource(r["type"], r["name"], r["path"], r.get("parent"), r.get("tags", {}))
            for r in SNAPSHOT["integrations"][0]["resources"]  # type: ignore[index]
        ]
        integration = session.query(Integration).filter_by(name="local-pg").one()
        apply_discovery(session, integration, found, now)
    exported = invoke("inventory", "export", "-o", str(files / "inventory.json"))
    assert exported.exit_code == 0, exported.output
    written = json.loads((files / "inventory.json").read_text())
    pg = next(i for i in written["integrations"] if i["name"] == "local-pg")
    assert next(r for r in pg["resources"] if r["name"] == "customers")["tags"] == {"pii": "true"}
    assert run(invoke, files, PASSING).exit_code == 0  # type: ignore[attr-defined]
