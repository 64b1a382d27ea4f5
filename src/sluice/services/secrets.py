"""Secrets at rest: Fernet with a key from SLUICE_SECRET_KEY or a 0600 key file in SLUICE_HOME."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from sluice.domain.errors import SluiceError

KEY_FILE_NAME = "secret.key"


class SecretBox:
    def __init__(self, key: str | bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise SluiceError(
                "SLUICE_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from exc

    @classmethod
    def load(cls, home: Path, env_key: str | None) -> SecretBox:
        if env_key:
            return cls(env_key)
        path = home / KEY_FILE_NAME
        if not path.exists():
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SluiceError("stored credentials cannot be decrypted with the current secret key") from exc
