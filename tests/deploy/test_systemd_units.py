"""The systemd units in deploy/systemd are valid and hardened: `systemd-analyze verify` finds nothing
to say about them (it exits 0 even on an unknown key, so any output fails), and the offline security
review rates their exposure low. systemd need not be running: both commands read the unit files.
ExecStart names /opt/sluice/bin/sluice, which verify requires to exist, so a copy points at this
environment's `sluice`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
INSTALLED = "/opt/sluice/bin/sluice"
MAX_EXPOSURE = 20  # systemd-analyze security's scale times ten: 2.0, well inside "OK"


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing: scripts/ensure-services.sh installs Debian's systemd")
        pytest.skip("systemd-analyze is missing: scripts/ensure-services.sh installs Debian's systemd")
    return found


@pytest.fixture
def units(tmp_path: Path) -> list[Path]:
    sluice = str(Path(sys.executable).with_name("sluice"))
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        assert INSTALLED in text, f"{unit.name} should run {INSTALLED}, where docs/deploy.md installs it"
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED, sluice))
        copies.append(copy)
    return copies


def test_there_is_a_unit_for_the_server_and_one_for_the_worker() -> None:
    assert [u.name for u in UNITS] == ["sluice-server.service", "sluice-worker.service"]


def test_systemd_analyze_verify_has_nothing_to_say(units: list[Path]) -> None:
    done = subprocess.run(
        [_analyze(), "verify", "--man=no", *map(str, units)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


@pytest.mark.parametrize("name", [u.name for u in UNITS])
def test_the_units_are_hardened(units: list[Path], name: str) -> None:
    unit = next(u for u in units if u.name == name)
    text = unit.read_text()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes", "EnvironmentFile="):
        assert setting in text, f"{name} lacks {setting}"
    done = subprocess.run(
        [_analyze(), "security", "--offline=yes", f"--threshold={MAX_EXPOSURE}", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
