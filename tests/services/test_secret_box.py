"""The secret box: fingerprints name a key without revealing it, old keys open but never seal, and a
secret that this process's key cannot open is logged (with the fix) rather than failing silently."""

from __future__ import annotations

import logging

import pytest

from sluice.domain.errors import SluiceError
from sluice.services.grants.secrets import SecretBox, fingerprint, generate_key


def test_old_keys_open_and_the_current_key_seals() -> None:
    old, new = generate_key(), generate_key()
    sealed_before = SecretBox(old).seal("pw")
    during = SecretBox(new, [old])
    assert during.open(sealed_before) == "pw"
    assert SecretBox(new).open(during.seal("pw2")) == "pw2"  # sealed with the new key only
    assert SecretBox(new).open(during.reseal(sealed_before)) == "pw"
    assert during.fingerprints == (fingerprint(new), fingerprint(old))


def test_a_fingerprint_is_stable_and_does_not_contain_the_key() -> None:
    key = generate_key()
    assert fingerprint(key) == fingerprint(key.encode()) == SecretBox(key).fingerprint
    assert fingerprint(key) != fingerprint(generate_key())
    assert key not in fingerprint(key) and len(fingerprint(key)) == 64


def test_a_secret_sealed_with_another_key_is_an_error_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = generate_key()
    token = SecretBox(generate_key()).seal("pw")
    with caplog.at_level(logging.ERROR, logger="sluice.secrets"), pytest.raises(SluiceError):
        SecretBox(key).open(token)
    [line] = [r.getMessage() for r in caplog.records]
    assert "same SLUICE_SECRET_KEY" in line and fingerprint(key)[:16] in line
    assert key not in line and token not in line
