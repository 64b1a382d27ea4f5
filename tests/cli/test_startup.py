"""`sluice` starts without loading what only some commands use: every CLI call pays for its imports,
and a person (or a script) calling it in a loop should not wait a second for each."""

from __future__ import annotations

import subprocess
import sys

# Modules that only `sluice test`, `sluice apply`, the servers or the directory sources need; each
# costs a tenth of a second or more to import.
HEAVY = ("scim2_models", "ldap3", "sluice.services.config.apply", "fastapi", "uvicorn")


def test_the_command_line_loads_no_heavy_module_before_a_command_needs_it() -> None:
    probe = f"import sys, sluice.cli.main; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert loaded == []
