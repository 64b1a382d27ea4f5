"""Every dependency is installed at the version constraints.txt pins: a fresh clone runs what was tested."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[_name(name)] = version
    return pins


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return [_name(r) for r in requirements]


def test_every_declared_dependency_is_pinned() -> None:
    pins = _pins()
    missing = [name for name in _declared() if name not in pins]
    assert not missing, f"add these to constraints.txt (make lock): {missing}"


def test_installed_versions_are_the_pinned_ones() -> None:
    pins = _pins()
    wrong = {}
    for name in _declared():
        installed = metadata.version(name)
        if installed != pins[name]:
            wrong[name] = (installed, pins[name])
    assert not wrong, f"installed vs pinned (run make install): {wrong}"
