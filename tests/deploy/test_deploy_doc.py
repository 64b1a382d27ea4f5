"""docs/deploy.md keeps up with the code: every `SLUICE_*` variable the code reads is in its reference
table (and the table names none the code has dropped), and every setting of every built-in
connector is in that connector's table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sluice.connectors.registry import connector_class, connector_classes

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "deploy.md").read_text()
VARIABLE = re.compile(r"SLUICE_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])")  # not a prefix such as SLUICE_OIDC_*
# Names that appear in the code as examples of a variable the operator chooses (a webhook's
# `secret_env`, an LDAP source's `bind_password`), not as settings Sluice reads.
EXAMPLES = {"SLUICE_PAGER_WEBHOOK_SECRET", "SLUICE_WEBHOOK_SECRET", "SLUICE_LDAP_PASSWORD"}
CONNECTORS = sorted(connector_classes())  # every built-in connector, and any added later


def _section(title: str, text: str = DOC, heading: str = "## ") -> str:
    start = text.index(f"{heading}{title}")
    end = text.find(f"\n{heading}", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def _in_code() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "sluice").rglob("*.py"):
        found |= set(VARIABLE.findall(path.read_text()))
    return found - EXAMPLES


def _in_table() -> set[str]:
    rows = [
        line for line in _section("Reference: environment variables").splitlines() if line.startswith("| `")
    ]
    return {name for row in rows for name in VARIABLE.findall(row.split("|")[1])}


def test_every_variable_the_code_reads_is_in_the_reference_table() -> None:
    missing = _in_code() - _in_table()
    assert not missing, f"docs/deploy.md, Reference: environment variables, lacks {sorted(missing)}"


def test_the_reference_table_names_no_variable_the_code_does_not_read() -> None:
    stale = _in_table() - _in_code()
    assert not stale, f"docs/deploy.md names variables the code no longer reads: {sorted(stale)}"


@pytest.mark.parametrize("kind", CONNECTORS)
def test_every_connector_setting_is_in_its_table(kind: str) -> None:
    reference = _section("Reference: connector settings")
    start = reference.index(f"**`{kind}`**")
    end = reference.find("\n**`", start + 1)
    table = reference[start : end if end != -1 else len(reference)]
    documented = {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`(\w+)`", line.split("|")[1])
    }
    settings = set(connector_class(kind).config_model.model_fields)
    assert settings <= documented, f"{kind}: undocumented settings {sorted(settings - documented)}"
