"""`sluice keys generate` and `sluice keys rotate` on the embedded store (the re-sealing of live
credentials itself is proven on real targets in tests/faults/test_key_rotation.py)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet

from sluice.services.grants.secrets import fingerprint
from tests.cli.conftest import Invoke, assert_clean_failure


def test_generate_prints_a_usable_key(invoke: Invoke) -> None:
    result = invoke("keys", "generate")
    assert result.exit_code == 0
    Fernet(result.stdout.strip())  # a valid key, on a line of its own


def test_rotate_moves_the_store_to_the_new_key_and_then_refuses_the_old_one(
    invoke: Invoke, home: Path
) -> None:
    assert invoke("db", "upgrade").exit_code == 0
    first = invoke("keys", "rotate", "--json")  # the local key file, made as `sluice up` makes it
    assert first.exit_code == 0, first.output
    local = (home / "secret.key").read_text().strip()
    assert json.loads(first.stdout)["fingerprint"] == fingerprint(local)[:16]

    new = Fernet.generate_key().decode()
    rotated = invoke("keys", "rotate", env={"SLUICE_SECRET_KEY": new, "SLUICE_OLD_SECRET_KEYS": local})
    assert rotated.exit_code == 0, rotated.output
    assert f"re-sealed 0 secrets under the key with fingerprint {fingerprint(new)[:16]}" in rotated.stdout
    assert "remove SLUICE_OLD_SECRET_KEYS" in rotated.stdout

    refused = invoke("keys", "rotate", env={"SLUICE_SECRET_KEY": local})
    assert_clean_failure(refused)
    assert "Set SLUICE_SECRET_KEY to the key the other servers and workers" in refused.stderr


def test_a_malformed_old_key_is_a_clear_error(invoke: Invoke) -> None:
    result = invoke(
        "keys",
        "rotate",
        env={"SLUICE_SECRET_KEY": Fernet.generate_key().decode(), "SLUICE_OLD_SECRET_KEYS": "x"},
    )
    assert_clean_failure(result)
    assert "SLUICE_OLD_SECRET_KEYS is not a valid Fernet key" in result.stderr
