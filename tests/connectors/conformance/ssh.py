"""The SSH connector's conformance harness: certificates signed for a real sshd that trusts the CA and
loads the KRL the connector writes."""

from __future__ import annotations

import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.paths import path_segment
from sluice.connectors.ssh_certs import SshConfig, SshConnector, SshHost, private_key_text
from tests.target_servers import Sshd, ssh_login

NAME = "conf-ssh"
HOSTILE = "we \"ird\"; host 'x'"


class SshHarness(ConnectorHarness):
    reaches_a_server = False

    def __init__(self, sshd: Sshd) -> None:
        self.sshd = sshd
        hosts = [
            {"name": "web-1", "address": "127.0.0.1", "port": sshd.port, "tags": {"env": "prod"}},
            {"name": HOSTILE, "address": "127.0.0.1", "port": sshd.port},
        ]
        for host in hosts:
            sshd.allow(f"{sshd.user}@{SshHost.model_validate(host).label}")
        self.config = SshConfig.model_validate(
            {
                "ca_key": {"file": sshd.ca_key_file},
                "krl_path": sshd.krl_path,
                "hosts": hosts,
                "permissions": {"login": {"account": sshd.user}, "admin": {"account": sshd.user}},
                "key_id_prefix": f"sc{secrets.token_hex(3)}_",
            }
        )
        self.connector = SshConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("host", f"{NAME}/web-1", "login")
        self.hostile = Sample("host", f"{NAME}/{path_segment(HOSTILE)}", "admin")
        self.tagged = (f"{NAME}/web-1", {"env": "prod"})

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        """A login with the private key the grantee was handed (credentials), or, straight from the
        connector, the one the grant's secret gives."""
        key = details.get("private_key") or private_key_text(unit.secret or "")
        return ssh_login(self.sshd, key, details["certificate"])

    def remove_by_hand(self, unit: AccessUnit) -> None:
        """What an operator does: revoke the certificate's key id in the KRL with ssh-keygen."""
        with tempfile.NamedTemporaryFile("w", suffix=".spec") as spec:
            spec.write(f"id: {unit.principal}\n")
            spec.flush()
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-k",
                    "-u",
                    "-s",
                    self.sshd.ca_public_file,
                    "-f",
                    self.sshd.krl_path,
                    spec.name,
                ],
                check=True,
            )

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        raise NotImplementedError("the SSH connector opens no connection: see broken()")

    def broken(self) -> Connector:
        gone = Path(tempfile.gettempdir()) / f"sluice-gone-{secrets.token_hex(6)}" / "revoked.krl"
        config = self.config.model_copy(update={"krl_path": str(gone)})
        return SshConnector(NAME, config, self.connector.context)
