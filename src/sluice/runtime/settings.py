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
    # Keys still accepted for opening secrets during a rotation (`sluice keys rotate`), never for sealing.
    old_secret_keys: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("SLUICE_HOME", ".sluice")).expanduser().resolve()
        url = os.environ.get("SLUICE_DATABASE_URL") or f"sqlite:///{home / 'sluice.db'}"
        old = tuple(k.strip() for k in os.environ.get("SLUICE_OLD_SECRET_KEYS", "").split(",") if k.strip())
        return cls(
            home=home,
            database_url=url,
            secret_key=os.environ.get("SLUICE_SECRET_KEY") or None,
            old_secret_keys=old,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
