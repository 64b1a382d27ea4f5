"""`sluice` starts without loading what only some commands use: every CLI call pays for its imports,
and a person (or a script) calling it in a loop should not wait a second for each. The same holds for
`sluice worker`, started by every deployment and restarted on every failure."""

from __future__ import annotations

import subprocess
import sys

# Modules that only `sluice test`, `sluice apply`, the servers or the directory sources need; each
# costs a tenth of a second or more to import (the SCIM models alone about a second of CPU).
HEAVY = ("scim2_models", "ldap3", "sluice.services.config.apply", "fastapi", "uvicorn")


def _loaded(module: str, watched: tuple[str, ...]) -> list[str]:
    probe = f"import sys, {module}; print(' '.join(m for m in {watched!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.split()


def test_the_command_line_loads_no_heavy_module_before_a_command_needs_it() -> None:
    assert _loaded("sluice.cli.main", HEAVY) == []


def test_a_worker_loads_neither_the_api_nor_the_scim_models() -> None:
    """`sluice worker` and `sluice server` start through `cli/serving.py`."""
    assert _loaded("sluice.cli.serving", ("scim2_models", "sluice.services.config.apply", "fastapi")) == []
