"""`sluice test` (policy tests against a config file, no store or target needed) and
`sluice inventory export` (the snapshot those tests read)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.errors import EXIT_FAILURE
from sluice.cli.options import JsonOpt
from sluice.cli.output import print_json, print_line

if TYPE_CHECKING:
    from sluice.services.config.policy_tests import Outcome

# The commands import what they run when they run: `sluice` answers every other command without
# loading the config checks (and the SCIM and LDAP models they bring), about a second of start-up.


def test_command(
    tests_file: Annotated[
        Path, typer.Option("--file", "-f", help="The policy tests (YAML).", dir_okay=False)
    ],
    config: Annotated[
        Path, typer.Option("--config", help="The config file under test.", dir_okay=False)
    ] = Path("sluice.yaml"),
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", help="A snapshot from `sluice inventory export`.", dir_okay=False),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write JUnit XML here.", dir_okay=False)
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check policy expectations against a config file; exit 1 when one fails (for CI)."""
    from sluice.cli.scratch_store import read_text, scratch_store
    from sluice.cli.store_ops import bad_file
    from sluice.services.config.policy_tests import read_policy_tests, run_policy_tests
    from sluice.services.config.source import ConfigError
    from sluice.store.db import transaction

    try:
        tests = read_policy_tests(read_text(tests_file), str(tests_file))
    except ConfigError as exc:
        raise bad_file(tests_file, exc) from exc
    now = datetime.now(UTC)
    with (
        scratch_store(config, inventory, now=now, actor="sluice test") as factory,
        transaction(factory) as session,
    ):
        outcomes = run_policy_tests(session, tests, now=now)
    if junit is not None:
        write_junit(junit, outcomes, name=str(tests_file))
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        print_json([{"name": o.name, "passed": o.passed, "detail": o.detail} for o in outcomes])
    else:
        for outcome in outcomes:
            print_line(f"{'PASS' if outcome.passed else 'FAIL'} {outcome.name}: {outcome.detail}")
        print_line(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def write_junit(path: Path, outcomes: list[Outcome], *, name: str) -> None:
    failures = sum(not o.passed for o in outcomes)
    suite = ET.Element("testsuite", name=name, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", classname="sluice.policy", name=outcome.name)
        if outcome.passed:
            ET.SubElement(case, "system-out").text = outcome.detail
        else:
            ET.SubElement(case, "failure", message=outcome.detail).text = outcome.detail
    root = ET.Element("testsuites", tests=str(len(outcomes)), failures=str(failures))
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def inventory_export(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the snapshot (JSON).")],
    integration: Annotated[str | None, typer.Option("--integration", help="Only this integration.")] = None,
) -> None:
    """Write every discovered resource and its tags to a file, for `sluice test --inventory`."""
    from sluice.cli import store_ops
    from sluice.services.targeting.snapshots import take_snapshot
    from sluice.store.db import transaction

    runtime = store_ops.open_runtime()
    with transaction(runtime.factory) as session:
        snapshot = take_snapshot(session, now=datetime.now(UTC), integration=integration)
    output.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(len(i["resources"]) for i in snapshot["integrations"])
    print_line(f"wrote {count} resources of {len(snapshot['integrations'])} integrations to {output}")
