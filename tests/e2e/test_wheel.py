"""The package as an operator installs it: the wheel is built from a clean copy of the sources,
installed into a fresh virtual environment (with the project's pinned constraints), checked to carry
every migration and every package data file, and `sluice up --demo` from that environment answers
`/readyz`. Everything lives under the test's own temporary folder, on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.target_servers import stop

pytestmark = [pytest.mark.e2e, pytest.mark.wheel]

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "src" / "sluice"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(*command: str | Path, cwd: Path | None = None, timeout: float = 120) -> None:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}\n{done.stderr}"


def _package_files() -> set[str]:
    """Every file of the package as it should land in site-packages (no caches)."""
    return {
        f"sluice/{path.relative_to(SOURCES).as_posix()}"
        for path in SOURCES.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _build_wheel(where: Path) -> Path:
    """Build from a copy holding only what a release holds, so the worktree's build leftovers
    (egg-info, build/) can neither help nor be written."""
    copy = where / "src-copy"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", where / "dist", copy)
    (wheel,) = (where / "dist").glob("sluice-*.whl")
    return wheel


def test_the_wheel_installs_alone_and_runs_the_demo(tmp_path: Path, postgres_admin_url: str) -> None:
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = _package_files() - names
    assert not missing, f"the wheel lacks: {sorted(missing)}"
    assert any(n.startswith("sluice/store/migrations/versions/") and n.endswith(".py") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "sluice = sluice.cli.main:app" in archive.read(entry_points).decode()

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    pip = venv / "bin" / "pip"
    # --no-compile: `sluice up` compiles the modules it imports; byte-compiling every installed
    # package first would add a third to the install's time.
    _run(pip, "install", "-q", "--no-compile", "-c", ROOT / "constraints.txt", wheel, timeout=300)

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_") and k != "PYTHONPATH"}
    env.update(SLUICE_HOME=str(tmp_path / "home"), SLUICE_DEMO_POSTGRES_URL=postgres_admin_url)
    log = (tmp_path / "up.log").open("wb")
    # Started from another folder, so nothing of the source tree can be imported by accident.
    process = subprocess.Popen(
        [venv / "bin" / "sluice", "up", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "up.log").read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "sluice up --demo from the wheel never became ready"
            time.sleep(0.25)
        check = subprocess.run(
            [venv / "bin" / "python", "-c", "import sluice, sys; print(sluice.__file__)"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        assert str(venv) in check.stdout, "the installed package is not the one in the fresh venv"
    finally:
        stop(process, grace=20)
        log.close()
