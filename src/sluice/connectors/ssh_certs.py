"""SSH connector: short-lived OpenSSH user certificates signed by a Sluice certificate authority.

Resources are hosts, declared in the config (name, address, port, tags): paths are
`{integration}/{host}`. A grant signs a certificate for a key Sluice derives from the grant's sealed
secret (the grantee gets the private key with their credentials: `sluice access ssh-key`):

- key id: the grant's principal `{prefix}{tag}_{grant hex}` (the tag names installation and
  integration, as for the other connectors), so `sshd`'s log names the grant;
- principal: `{account}@{host}`, the account the permission maps to on that host, so a certificate
  for one host does not open another (each host lists `%u@{its name}` in its AuthorizedPrincipalsFile);
- validity: from a minute ago to the grant's end (a grant without an end gets `max_validity_hours`);
- critical options `force-command` and `source-address` where the permission sets them.

Revoking puts the certificate's serials and key id in the KRL at `krl_path`, which every host loads with
`RevokedKeys` (fetched from there, or from a web server that publishes it). Entries are dropped once
their certificates have expired anyway. A KRL does not end an SSH session that is already open: the
certificate's end bounds every session's start, not its length (docs/connectors.md).

What Sluice issued is kept beside the KRL in `{krl_path}.issued.json` (public data: certificates,
serials, ends), under a file lock, so several workers may share the location.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    ManagedPrincipal,
    SecretRef,
)
from sluice.connectors.paths import path_segment, split_path
from sluice.connectors.ssh_krl import Krl, KrlFormatError, parse, serialize
from sluice.connectors.support import PRINCIPAL_PREFIX, managed_by_name, require_own_name, tagged_principal
from sluice.domain.errors import InvalidInput, TargetError

_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
EXTENSIONS = ("permit-pty", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding")
PERMISSIONS = ("login", "admin")
CLOCK_SLACK = timedelta(minutes=1)


class SshPermission(BaseModel):
    """What one permission gives on a host: the account, and what the certificate allows there."""

    model_config = ConfigDict(extra="forbid")

    account: str
    force_command: str | None = Field(default=None, min_length=1, max_length=1000)
    source_address: list[str] = Field(default_factory=list, max_length=50)
    extensions: list[str] = Field(default_factory=lambda: ["permit-pty"], max_length=len(EXTENSIONS))

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _ACCOUNT.match(value):
            raise ValueError(
                "an account is a Unix user name: a lowercase letter or _, then up to 31 of a-z 0-9 _ . -"
            )
        return value

    @field_validator("source_address")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network such as 10.0.0.0/8") from None
        return value

    @field_validator("extensions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(EXTENSIONS))
        if unknown:
            raise ValueError(f"unknown extensions {unknown}; known: {', '.join(EXTENSIONS)}")
        return value

    def critical_options(self) -> dict[bytes, bytes]:
        options: dict[bytes, bytes] = {}
        if self.force_command:
            options[b"force-command"] = self.force_command.encode()
        if self.source_address:
            options[b"source-address"] = ",".join(self.source_address).encode()
        return options


class SshHost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=253)
    port: int = Field(default=22, ge=1, le=65535)
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        """The host's name in certificate principals: the name itself when it is a plain host label,
        otherwise `h` and 12 hex digits of it (docs/connectors.md says which)."""
        if _HOST_LABEL.match(self.name):
            return self.name
        return "h" + hashlib.sha256(self.name.encode()).hexdigest()[:12]


class SshConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ca_key: SecretRef  # the CA's private key in OpenSSH format (ssh-keygen -t ed25519 -f sluice_ca)
    krl_path: str = Field(min_length=1, max_length=1000)
    hosts: list[SshHost] = Field(default_factory=list, max_length=10_000)
    permissions: dict[str, SshPermission]
    key_id_prefix: str = "sluice_"
    max_validity_hours: float = Field(default=24, gt=0, le=24 * 90)

    @field_validator("permissions")
    @classmethod
    def _permissions(cls, value: dict[str, SshPermission]) -> dict[str, SshPermission]:
        unknown = sorted(set(value) - set(PERMISSIONS))
        if unknown or "login" not in value:
            raise ValueError(f"permissions names login (and optionally admin); unknown: {unknown}")
        return value

    @field_validator("key_id_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not PRINCIPAL_PREFIX.match(value):
            raise ValueError(
                "key_id_prefix is a lowercase letter then up to 11 lowercase letters, digits or _"
            )
        return value


def private_key_for(secret: str) -> ed25519.Ed25519PrivateKey:
    """The grant's SSH key, derived from its sealed secret: the same secret always gives the same key."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(b"sluice-ssh\0" + secret.encode()).digest()
    )


def private_key_text(secret: str) -> str:
    """The grant's private key as an OpenSSH key file holds it."""
    return (
        private_key_for(secret)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        .decode()
    )


def _now() -> datetime:
    return datetime.now(UTC)


class SshConnector:
    kind: ClassVar[str] = "ssh"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"host": PERMISSIONS}
    issues_secret: ClassVar[bool] = True
    config_model: ClassVar[type[BaseModel]] = SshConfig

    def __init__(self, name: str, config: BaseModel, context: ConnectorContext) -> None:
        assert isinstance(config, SshConfig)
        self.name, self.config, self.context = name, config, context
        self.krl_path = Path(config.krl_path).expanduser()
        self.ledger_path = self.krl_path.with_name(self.krl_path.name + ".issued.json")
        self.hosts = {h.name: h for h in config.hosts}

    @staticmethod
    def secret_fields(secret: str) -> dict[str, str]:
        """What the grantee gets for the grant's secret: the private key, in OpenSSH's file format."""
        return {"private_key": private_key_text(secret)}

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return tagged_principal(self.config.key_id_prefix, self.name, self.context.installation, grant_id)

    def discover(self) -> Iterable[DiscoveredResource]:
        for host in self.config.hosts:
            yield DiscoveredResource(
                "host", host.name, f"{self.name}/{path_segment(host.name)}", None, dict(host.tags)
            )

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        principal = require_own_name(
            self.config.key_id_prefix,
            self.name,
            self.context.installation,
            unit.principal,
            unit.grant_id,
            "a key id",
        )
        host, permission = self._host(unit.resource_path), self._permission(unit.permission)
        if not unit.secret:
            raise TargetError("an SSH grant needs its secret to derive the key", retryable=False)
        ca = self._ca_key()
        with self._locked() as (krl, ledger):
            issued = ledger["certs"].get(principal)
            ends = unit.ends_at or _now() + timedelta(hours=self.config.max_validity_hours)
            fresh = issued is not None and issued["valid_before"] >= int(ends.timestamp())
            if issued is not None and fresh and not self._revoked(krl, ca, issued):
                return dict(issued["details"])
            issued = self._sign(ca, unit, principal, host, permission, ends, previous=issued)
            ledger["certs"][principal] = issued
        return dict(issued["details"])

    def revoke(self, unit: AccessUnit) -> None:
        principal = require_own_name(
            self.config.key_id_prefix,
            self.name,
            self.context.installation,
            unit.principal,
            unit.grant_id,
            "a key id",
        )
        ca = self._ca_key()
        fallback_end = int((_now() + timedelta(hours=self.config.max_validity_hours)).timestamp())
        with self._locked() as (krl, ledger):
            issued = ledger["certs"].pop(principal, None)
            revoked = krl.for_ca(_ca_blob(ca))
            ends = issued["valid_before"] if issued else fallback_end
            revoked.key_ids.add(principal)
            ledger["revoked"][f"id:{principal}"] = ends
            for serial in issued["serials"] if issued else []:
                revoked.serials.add(serial)
                ledger["revoked"][f"serial:{serial}"] = ends

    def list_managed(self) -> list[ManagedPrincipal]:
        ca = self._ca_key()
        with self._locked() as (krl, ledger):
            found = []
            for principal, issued in ledger["certs"].items():
                mine = managed_by_name(
                    self.config.key_id_prefix, self.name, self.context.installation, principal
                )
                if mine is not None and not mine.legacy and not self._revoked(krl, ca, issued):
                    found.append(ManagedPrincipal(principal, issued["grant_id"]))
        return found

    def check(self) -> list[str]:
        problems = []
        try:
            self._ca_key()
        except TargetError as exc:
            problems.append(exc.detail)
        try:
            with self._locked():
                pass
        except TargetError as exc:
            problems.append(exc.detail)
        if not self.config.hosts:
            problems.append("no hosts are configured")
        return problems

    # --- certificates

    def _sign(
        self,
        ca: Any,
        unit: AccessUnit,
        principal: str,
        host: SshHost,
        permission: SshPermission,
        ends: datetime,
        previous: dict[str, Any] | None,
    ) -> dict[str, Any]:
        assert unit.secret is not None
        if ends <= _now():
            raise TargetError(
                f"grant {unit.grant_id} has already ended: no certificate to sign", retryable=False
            )
        public = private_key_for(unit.secret).public_key()
        serial = secrets.randbits(63) | 1
        starts = _now() - CLOCK_SLACK
        builder = (
            serialization.SSHCertificateBuilder()
            .public_key(public)
            .serial(serial)
            .type(serialization.SSHCertificateType.USER)
            .key_id(principal.encode())
            .valid_principals([f"{permission.account}@{host.label}".encode()])
            .valid_after(int(starts.timestamp()))
            .valid_before(int(ends.timestamp()))
        )
        for option, value in permission.critical_options().items():
            builder = builder.add_critical_option(option, value)
        for extension in permission.extensions:
            builder = builder.add_extension(extension.encode(), b"")
        certificate = builder.sign(ca).public_bytes().decode() + f" {principal}"
        details = {
            "grant_id": unit.grant_id,
            "host": host.address,
            "port": host.port,
            "username": permission.account,
            "certificate": certificate,
            "certificate_principal": f"{permission.account}@{host.label}",
            "key_id": principal,
            "valid_before": ends.astimezone(UTC).isoformat(),
        }
        serials = [*(previous["serials"] if previous else []), serial]
        return {
            "grant_id": unit.grant_id,
            "certificate": certificate,
            "serials": serials,
            "valid_before": int(ends.timestamp()),
            "details": details,
        }

    def _revoked(self, krl: Krl, ca: Any, issued: dict[str, Any]) -> bool:
        found = krl.by_ca.get(_ca_blob(ca))
        if found is None:
            return False
        key_id = issued["details"]["key_id"]
        return key_id in found.key_ids or any(found.covers(s) for s in issued["serials"][-1:])

    def _host(self, path: str) -> SshHost:
        names = split_path(self.name, path)
        if not names or len(names) != 1 or names[0] not in self.hosts:
            raise TargetError(f"{path!r} is not a host of {self.name}", retryable=False)
        return self.hosts[names[0]]

    def _permission(self, name: str) -> SshPermission:
        if name not in self.config.permissions:
            raise TargetError(f"{self.name} maps no account to permission {name!r}", retryable=False)
        return self.config.permissions[name]

    def _ca_key(self) -> Any:
        try:
            text = self.config.ca_key.resolve(f"{self.name}: ca_key")
        except InvalidInput as exc:
            raise TargetError(exc.detail, retryable=False) from exc
        try:
            key = serialization.load_ssh_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise TargetError(
                f"{self.name}: ca_key is not an unencrypted OpenSSH private key", retryable=False
            ) from exc
        return key

    # --- the KRL and the ledger beside it

    @contextmanager
    def _locked(self) -> Iterator[tuple[Krl, dict[str, Any]]]:
        """The KRL and the ledger, read under an exclusive lock and written back when the block ends
        without error. A missing or read-only location is a retryable TargetError: it is the target."""
        folder = self.krl_path.parent
        try:
            lock = os.open(
                self.krl_path.with_name(self.krl_path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o640
            )
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot open the KRL location {folder}: {exc.strerror}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            krl, ledger = self._read()
            before = (serialize(krl, generated_at=0), json.dumps(ledger, sort_keys=True))
            yield krl, ledger
            self._prune(krl, ledger)
            if (
                serialize(krl, generated_at=0),
                json.dumps(ledger, sort_keys=True),
            ) != before or not self.krl_path.exists():
                krl.version += 1
                self._write(self.ledger_path, json.dumps(ledger, sort_keys=True).encode())
                self._write(self.krl_path, serialize(krl, generated_at=int(_now().timestamp())))
        finally:
            os.close(lock)

    def _read(self) -> tuple[Krl, dict[str, Any]]:
        try:
            krl = (
                parse(self.krl_path.read_bytes())
                if self.krl_path.exists()
                else Krl(comment=f"sluice {self.name}")
            )
            ledger = json.loads(self.ledger_path.read_text()) if self.ledger_path.exists() else {}
        except KrlFormatError as exc:
            raise TargetError(f"{self.name}: {self.krl_path}: {exc}", retryable=False) from exc
        except (OSError, ValueError) as exc:
            raise TargetError(f"{self.name}: cannot read {self.krl_path} or its ledger: {exc}") from exc
        ledger.setdefault("certs", {})
        ledger.setdefault("revoked", {})
        return krl, ledger

    def _prune(self, krl: Krl, ledger: dict[str, Any]) -> None:
        """Forget what has expired: an expired certificate needs no KRL entry to be refused."""
        now = int(_now().timestamp())
        for principal in [p for p, c in ledger["certs"].items() if c["valid_before"] < now]:
            del ledger["certs"][principal]
        expired = [entry for entry, ends in ledger["revoked"].items() if ends < now]
        for entry in expired:
            del ledger["revoked"][entry]
            what, _, value = entry.partition(":")
            for revoked in krl.by_ca.values():
                if what == "id":
                    revoked.key_ids.discard(value)
                else:
                    revoked.serials.discard(int(value))

    def _write(self, path: Path, data: bytes) -> None:
        try:
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except OSError as exc:
            raise TargetError(f"{self.name}: cannot write {path}: {exc.strerror}") from exc


def _ca_blob(ca: Any) -> bytes:
    """The CA's public key as the SSH wire blob a KRL names it by."""
    line = ca.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])
