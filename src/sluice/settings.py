"""Where Sluice keeps its state and how it reaches its store, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    secret_key: str | None

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("SLUICE_HOME", ".sluice")).expanduser().resolve()
        url = os.environ.get("SLUICE_DATABASE_URL") or f"sqlite:///{home / 'sluice.db'}"
        return cls(home=home, database_url=url, secret_key=os.environ.get("SLUICE_SECRET_KEY") or None)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
