"""`sluice plan --against` (a pull request's change, no store needed), `--by group`, and `--drift`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Invoke, assert_clean_failure
from tests.cli.test_policy_commands import SNAPSHOT
from tests.services.config_samples import GOOD, edit

WITHOUT_CUSTOMERS = edit(
    GOOD,
    "        type: table\n        permissions: [read]\n",
    "        type: table\n"
    "        select: {exclude: {names: [local-pg/sluice_demo/public/customers]}}\n"
    "        permissions: [read]\n",
)


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    old, new, inventory = tmp_path / "main.yaml", tmp_path / "branch.yaml", tmp_path / "inventory.json"
    old.write_text(GOOD)
    new.write_text(WITHOUT_CUSTOMERS)
    inventory.write_text(json.dumps(SNAPSHOT))
    return old, new, inventory


def test_against_another_file_diffs_access_with_no_store(invoke: Invoke, tmp_path: Path) -> None:
    old, new, inventory = _files(tmp_path)
    result = invoke("plan", "--against", str(old), "-f", str(new), "--inventory", str(inventory), "--json")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)
    assert [(c["kind"], c["name"]) for c in planned["changed"]] == [("flow", "engineering-read-pg")]
    people = {p["email"]: p for p in planned["access"]["people"]}
    lost = [{"resource": "local-pg/sluice_demo/public/customers", "permission": "read"}]
    assert sorted(people) == ["alice@example.com", "bob@example.com"]
    assert people["alice@example.com"]["no_longer"] == lost and people["alice@example.com"]["may_newly"] == []
    assert not (tmp_path / "home").exists()  # no store was made or needed


def test_by_group_counts_the_members_a_change_reaches(invoke: Invoke, tmp_path: Path) -> None:
    old, new, inventory = _files(tmp_path)
    result = invoke(
        "plan", "--against", str(old), "-f", str(new), "--inventory", str(inventory), "--by", "group"
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "group engineering (2 members reached)" in out
    assert "- may no longer request read on local-pg/sluice_demo/public/customers (2 of 2 members)" in out
    assert "group oncall (1 member reached)" in out
    assert "alice@example.com" not in out.split("access:")[1]  # per group, not per person
    as_json = invoke(
        "plan",
        "--against",
        str(old),
        "-f",
        str(new),
        "--inventory",
        str(inventory),
        "--by",
        "group",
        "--json",
    )
    groups = {g["group"]: g for g in json.loads(as_json.stdout)["access"]["groups"]}
    assert groups["engineering"]["no_longer"] == [
        {"resource": "local-pg/sluice_demo/public/customers", "permission": "read", "people": 2}
    ]


def test_inventory_without_against_is_refused(invoke: Invoke, tmp_path: Path) -> None:
    _, new, inventory = _files(tmp_path)
    assert_clean_failure(invoke("plan", "-f", str(new), "--inventory", str(inventory)), code=2)


SMALL = """\
identities:
  - email: alice@example.com
    name: Alice
    groups: [engineering]
  - email: carol@example.com
    name: Carol
"""


def test_drift_names_what_the_store_holds_that_the_file_does_not(invoke: Invoke, tmp_path: Path) -> None:
    written, changed = tmp_path / "sluice.yaml", tmp_path / "changed.yaml"
    written.write_text(SMALL)
    changed.write_text(
        edit(SMALL, "    name: Alice\n", "    name: Alice Renamed\n")
        + "  - email: dave@example.com\n    name: Dave\n"
    )
    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("apply", "-f", str(written)).exit_code == 0
    clean = invoke("plan", "--drift", "-f", str(written))
    assert clean.exit_code == 0 and "no drift" in clean.stdout, clean.output
    assert invoke("apply", "-f", str(changed)).exit_code == 0  # as an API change would leave it
    result = invoke("plan", "--drift", "-f", str(written), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drift"] == [
        {"kind": "identity", "name": "alice@example.com", "only_in_store": False, "fields": ["name"]},
        {"kind": "identity", "name": "dave@example.com", "only_in_store": True, "fields": []},
    ]
    text = invoke("plan", "--drift", "-f", str(written))
    assert "identity dave@example.com: in the store, not in the file" in text.stdout
