"""Rules of the code's shape that a refactoring could quietly undo."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "sluice"
STATE_MODULES = {SRC / "store" / "grant_states.py", SRC / "domain" / "states.py"}
HAND_WRITTEN_STATE = re.compile(r"\b(desired|actual)\s*(==|!=)|\b(desired|actual)\.(in_|not_in)\(")


def test_grant_states_are_compared_only_in_their_two_modules() -> None:
    """Live, due, needs work, in state X… are `store/grant_states.py` (SQL) and `domain/states.py`
    (Python); everything else calls them instead of comparing `desired` or `actual` by hand."""
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if path not in STATE_MODULES
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HAND_WRITTEN_STATE.search(line)
    ]
    assert found == []


def test_the_worker_writes_no_table_itself() -> None:
    """The worker keeps threads, timing and dispatch; every state change is a service's."""
    importers = []
    for path in sorted((SRC / "worker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(name.startswith(("sluice.store.tables", "sluice.store.people_tables")) for name in names):
                importers.append(str(path.relative_to(SRC)))
    assert importers == []


MAX_SERVICE_LINES = 260


def test_no_services_module_passes_the_size_mark() -> None:
    """A services module holds one use case or one seam; past ~250 lines it is time to find the seam."""
    offenders = []
    for path in sorted((SRC / "services").rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_SERVICE_LINES:
            offenders.append(f"{path.relative_to(SRC)}: {lines} lines")
    assert offenders == []
