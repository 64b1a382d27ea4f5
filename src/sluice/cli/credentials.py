"""The sessions `sluice login` keeps: `$XDG_CONFIG_HOME/sluice/credentials` (default
`~/.config/sluice/credentials`), JSON keyed by server URL, readable by its owner only (0600, in a
0700 directory), written whole through a temporary file so a crash never leaves half of it."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice.cli.errors import CliError


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "sluice" / "credentials"


def _read() -> dict[str, dict[str, Any]]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}; remove it and run `sluice login` again") from exc
    servers = data.get("servers") if isinstance(data, dict) else None
    return {k: v for k, v in servers.items() if isinstance(v, dict)} if isinstance(servers, dict) else {}


def _write(servers: dict[str, dict[str, Any]]) -> None:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".credentials.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"servers": servers}, handle, indent=2)
    os.chmod(temporary, 0o600)  # in case it existed with wider rights
    os.replace(temporary, path)


def stored_session(url: str) -> dict[str, Any] | None:
    """The session stored for the server at `url`, while it has not ended."""
    entry = _read().get(url.rstrip("/"))
    if not entry or not isinstance(entry.get("token"), str):
        return None
    try:
        ends = datetime.fromisoformat(str(entry.get("expires_at")))
    except ValueError:
        return None
    return entry if ends > datetime.now(UTC) else None


def stored_token(url: str) -> str | None:
    entry = stored_session(url)
    return str(entry["token"]) if entry else None


def store_session(url: str, session: dict[str, Any]) -> Path:
    servers = _read()
    servers[url.rstrip("/")] = {
        key: session[key] for key in ("token", "email", "method", "expires_at") if key in session
    }
    _write(servers)
    return credentials_path()


def forget_session(url: str) -> bool:
    servers = _read()
    if servers.pop(url.rstrip("/"), None) is None:
        return False
    _write(servers)
    return True
