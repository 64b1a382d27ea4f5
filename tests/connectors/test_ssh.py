"""The SSH connector beyond the conformance suite: what the certificate says and sshd enforces, the KRL
that an operator also edits by hand, and config errors."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sluice.connectors.base import AccessUnit, ConnectorContext
from sluice.connectors.ssh_certs import SshConfig, SshConnector, private_key_text
from sluice.connectors.ssh_krl import KrlFormatError, parse
from sluice.domain.errors import TargetError
from tests.target_servers import Sshd, ssh_login

SECRET = "s3cret-for-the-grant"


def connector(sshd: Sshd, *, login: dict[str, Any] | None = None, krl: str | None = None) -> SshConnector:
    config = SshConfig.model_validate(
        {
            "ca_key": {"file": sshd.ca_key_file},
            "krl_path": krl or sshd.krl_path,
            "hosts": [
                {"name": "db-1", "address": "127.0.0.1", "port": sshd.port},
                {"name": "elsewhere", "address": "127.0.0.1", "port": sshd.port},
            ],
            "permissions": {"login": {"account": sshd.user, **(login or {})}},
        }
    )
    sshd.allow(f"{sshd.user}@db-1")  # `elsewhere` is not allowed: a host that does not take it
    return SshConnector("ops-ssh", config, ConnectorContext(installation="ssh-tests"))


def unit_for(c: SshConnector, grant_hex: str, host: str = "db-1", minutes: int = 30) -> AccessUnit:
    grant_id = f"gr_{grant_hex}"
    return AccessUnit(
        grant_id=grant_id,
        principal=c.principal_for(grant_id, "ada@example.com"),
        grantee_email="ada@example.com",
        resource_type="host",
        resource_path=f"ops-ssh/{host}",
        permission="login",
        ends_at=datetime.now(UTC) + timedelta(minutes=minutes),
        secret=SECRET + grant_hex,
    )


def ssh_output(
    sshd: Sshd, unit: AccessUnit, details: dict[str, Any], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    key, cert = tmp_path / "id", tmp_path / "id-cert.pub"
    key.write_text(private_key_text(unit.secret or ""))
    key.chmod(0o600)
    cert.write_text(details["certificate"] + "\n")
    command = [
        "ssh",
        "-F",
        "/dev/null",
        "-i",
        str(key),
        "-o",
        f"CertificateFile={cert}",
        "-o",
        "BatchMode=yes",
    ]
    command += [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
    ]
    command += ["-p", str(sshd.port), f"{sshd.user}@127.0.0.1", "echo asked-for"]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_the_certificate_names_the_grant_the_account_at_the_host_and_the_end(
    sshd: Sshd, tmp_path: Path
) -> None:
    c = connector(sshd)
    unit = unit_for(c, "0a0000000001")
    details = c.grant(unit)
    (tmp_path / "cert.pub").write_text(details["certificate"] + "\n")
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(tmp_path / "cert.pub")], capture_output=True, text=True, check=True
    ).stdout
    assert f'Key ID: "{unit.principal}"' in shown
    assert f"{sshd.user}@db-1" in shown
    assert unit.ends_at is not None and unit.ends_at.astimezone().strftime("%Y-%m-%dT%H:%M") in shown
    assert details["username"] == sshd.user and details["port"] == sshd.port
    c.revoke(unit)


def test_the_grantees_private_key_is_the_certificates_key(sshd: Sshd, tmp_path: Path) -> None:
    c = connector(sshd)
    unit = unit_for(c, "0a0000000002")
    details = c.grant(unit)
    key = tmp_path / "id"
    key.write_text(SshConnector.secret_fields(unit.secret or "")["private_key"])
    key.chmod(0o600)
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True
    )
    (tmp_path / "id-cert.pub").write_text(details["certificate"] + "\n")
    shown = subprocess.run(
        ["ssh-keygen", "-L", "-f", str(tmp_path / "id-cert.pub")], capture_output=True, text=True
    )
    assert f"Public key: ED25519-CERT {fingerprint.stdout.split()[1]}" in shown.stdout
    assert ssh_login(sshd, key.read_text(), details["certificate"])
    c.revoke(unit)


def test_a_certificate_for_one_host_does_not_open_another(sshd: Sshd) -> None:
    c = connector(sshd)
    unit = unit_for(c, "0a0000000003", host="elsewhere")
    details = c.grant(unit)
    assert details["certificate_principal"] == f"{sshd.user}@elsewhere"
    assert not ssh_login(sshd, private_key_text(unit.secret or ""), details["certificate"])
    c.revoke(unit)


def test_force_command_and_source_address_are_enforced_by_sshd(sshd: Sshd, tmp_path: Path) -> None:
    forced = connector(sshd, login={"force_command": "echo forced-by-sluice"})
    unit = unit_for(forced, "0a0000000004")
    done = ssh_output(sshd, unit, forced.grant(unit), tmp_path)
    assert done.returncode == 0 and "forced-by-sluice" in done.stdout and "asked-for" not in done.stdout
    forced.revoke(unit)

    fenced = connector(sshd, login={"source_address": ["10.9.9.9/32"]})
    unit = unit_for(fenced, "0a0000000005")
    assert ssh_output(sshd, unit, fenced.grant(unit), tmp_path).returncode != 0
    fenced.revoke(unit)


def test_what_an_operator_revoked_by_hand_stays_revoked_after_sluice_rewrites_the_krl(
    sshd: Sshd, tmp_path: Path
) -> None:
    krl = tmp_path / "revoked.krl"
    other_key = tmp_path / "someone"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    spec = tmp_path / "spec"
    spec.write_text("serial: 100-200\nserial: 7\nid: by-hand\n")
    subprocess.run(
        ["ssh-keygen", "-q", "-k", "-f", str(krl), "-s", sshd.ca_public_file, str(spec)], check=True
    )
    subprocess.run(["ssh-keygen", "-q", "-k", "-u", "-f", str(krl), str(other_key) + ".pub"], check=True)

    c = connector(sshd, krl=str(krl))
    unit = unit_for(c, "0a0000000006")
    c.grant(unit)
    c.revoke(unit)
    written = parse(krl.read_bytes())
    revoked = next(iter(written.by_ca.values()))
    assert {7, unit.principal} <= revoked.serials | revoked.key_ids
    assert (100, 200) in revoked.ranges and "by-hand" in revoked.key_ids
    # ssh-keygen reads the rewritten KRL and still finds the plain key revoked by hand
    query = subprocess.run(
        ["ssh-keygen", "-Q", "-f", str(krl), str(other_key) + ".pub"], capture_output=True, text=True
    )
    assert query.returncode != 0 and "REVOKED" in query.stdout


def test_revoked_entries_leave_the_krl_once_their_certificates_have_expired(
    sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = connector(sshd, krl=str(tmp_path / "revoked.krl"))
    unit = unit_for(c, "0a0000000007", minutes=5)
    c.grant(unit)
    c.revoke(unit)
    later = datetime.now(UTC) + timedelta(minutes=10)  # the certificate has ended on its own
    monkeypatch.setattr("sluice.connectors.ssh_certs._now", lambda: later)
    c.revoke(unit_for(c, "0a0000000008", minutes=60))  # any later write prunes
    key_ids = {k for r in parse((tmp_path / "revoked.krl").read_bytes()).by_ca.values() for k in r.key_ids}
    assert unit.principal not in key_ids and c.principal_for("gr_0a0000000008", "") in key_ids


def test_a_grant_that_has_already_ended_gets_no_certificate(sshd: Sshd, tmp_path: Path) -> None:
    c = connector(sshd, krl=str(tmp_path / "revoked.krl"))
    with pytest.raises(TargetError, match="already ended") as error:
        c.grant(unit_for(c, "0a0000000009", minutes=-5))
    assert not error.value.retryable


def test_a_signed_or_foreign_krl_is_refused_not_overwritten(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "revoked.krl").write_bytes(b"not a KRL at all")
    c = connector(sshd, krl=str(tmp_path / "revoked.krl"))
    problems = c.check()
    assert any("bad magic" in p for p in problems)
    with pytest.raises(KrlFormatError):
        parse(b"not a KRL at all")
    assert (tmp_path / "revoked.krl").read_bytes() == b"not a KRL at all"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"permissions": {"admin": {"account": "root"}}}, "login"),
        ({"permissions": {"login": {"account": "Bad User"}}}, "Unix user name"),
        ({"permissions": {"login": {"account": "ops", "source_address": ["not-a-net"]}}}, "network"),
        (
            {"permissions": {"login": {"account": "ops", "extensions": ["permit-everything"]}}},
            "unknown extensions",
        ),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_config_errors_say_what_to_fix(change: dict[str, Any], words: str) -> None:
    base = {"ca_key": {"env": "X"}, "krl_path": "/tmp/k", "permissions": {"login": {"account": "ops"}}}
    with pytest.raises(ValidationError) as error:
        SshConfig.model_validate({**base, **change})
    assert words in str(error.value)


def test_an_extended_grant_gets_a_longer_certificate_and_a_revoke_ends_both(sshd: Sshd) -> None:
    c = connector(sshd)
    unit = unit_for(c, "0a000000000a", minutes=30)
    first = c.grant(unit)
    longer = AccessUnit(
        **{**unit.__dict__, "ends_at": (unit.ends_at or datetime.now(UTC)) + timedelta(hours=1)}
    )
    second = c.grant(longer)
    assert second["certificate"] != first["certificate"] and second["valid_before"] > first["valid_before"]
    key = private_key_text(unit.secret or "")
    assert ssh_login(sshd, key, first["certificate"]) and ssh_login(sshd, key, second["certificate"])
    c.revoke(longer)
    assert not ssh_login(sshd, key, first["certificate"]) and not ssh_login(sshd, key, second["certificate"])
