"""Secrets at rest: Fernet with a key from SLUICE_SECRET_KEY or a 0600 key file in SLUICE_HOME.

During a key rotation a box also holds old keys (SLUICE_OLD_SECRET_KEYS): it seals with the current key
and opens with any of them, until `sluice keys rotate` has sealed everything again under the current
one. A key is known to the store only by its fingerprint (`fingerprint`), never by its value."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sluice.domain.errors import SluiceError

log = logging.getLogger("sluice.secrets")

KEY_FILE_NAME = "secret.key"

KEY_HELP = "make one with: sluice keys generate"


def _fernet(key: str | bytes, name: str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        raise SluiceError(f"{name} is not a valid Fernet key (32 url-safe base64 bytes); {KEY_HELP}") from exc


def fingerprint(key: str | bytes) -> str:
    """A one-way name for a key: SHA-256 over its 32 bytes, with a label so it matches no other use."""
    raw = base64.urlsafe_b64decode(key.encode() if isinstance(key, str) else key)
    return hashlib.sha256(b"sluice secret key fingerprint\0" + raw).hexdigest()


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, key: str | bytes, old_keys: Sequence[str | bytes] = ()) -> None:
        current = _fernet(key, "SLUICE_SECRET_KEY")
        old = [_fernet(k, "a key in SLUICE_OLD_SECRET_KEYS") for k in old_keys]
        self._fernet = MultiFernet([current, *old])
        self.fingerprint = fingerprint(key)
        # Every key this box can open with: the current one first.
        self.fingerprints = tuple(dict.fromkeys([self.fingerprint, *(fingerprint(k) for k in old_keys)]))

    @classmethod
    def load(cls, home: Path, env_key: str | None, old_keys: Sequence[str] = ()) -> SecretBox:
        if env_key:
            return cls(env_key, old_keys)
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
        return cls(path.read_bytes().strip(), old_keys)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            log.error(
                "a stored secret cannot be opened with this process's secret key (fingerprint %s): "
                "every server and worker of a store must use the same SLUICE_SECRET_KEY",
                self.fingerprint[:16],
            )
            raise SluiceError("stored credentials cannot be decrypted with the current secret key") from exc

    def reseal(self, token: str) -> str:
        """The same secret sealed under the current key (opened with whichever key sealed it)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SluiceError(
                "a stored secret cannot be opened with SLUICE_SECRET_KEY or SLUICE_OLD_SECRET_KEYS"
            ) from exc
