"""Session fixtures for the target servers the connector tests talk to: the local MariaDB and Redis,
a throwaway OpenLDAP `slapd` started on a free port, and the reference endpoint of the custom HTTP
connector over HTTPS. Loaded from tests/conftest.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ldap3
import pymysql
import pytest
import redis

from tests.conftest import _need_service

MYSQL_HOST = os.environ.get("SLUICE_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("SLUICE_TEST_MYSQL_PORT", "3306"))
REDIS_PORT = int(os.environ.get("SLUICE_TEST_REDIS_PORT", "6379"))
LDAP_BASE = "dc=example,dc=org"
LDAP_ADMIN = f"cn=admin,{LDAP_BASE}"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop(process: subprocess.Popen[bytes], *, grace: float = 10) -> None:
    """Ask a server the tests started to stop, and kill it if it has not within `grace` seconds."""
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def mysql_server() -> dict[str, object]:
    try:
        pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", connect_timeout=5).close()
    except pymysql.err.MySQLError as exc:
        _need_service("MariaDB/MySQL", exc)
    return {"host": MYSQL_HOST, "port": MYSQL_PORT, "user": "root"}


@pytest.fixture(scope="session")
def redis_server() -> dict[str, object]:
    try:
        redis.Redis(port=REDIS_PORT, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        _need_service("Redis", exc)
    return {"host": "127.0.0.1", "port": REDIS_PORT}


@dataclass(frozen=True)
class Slapd:
    url: str
    port: int
    base: str
    admin_dn: str
    admin_password: str
    password_file: str

    def admin(self) -> ldap3.Connection:
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=5)
        return ldap3.Connection(
            server,
            self.admin_dn,
            self.admin_password,
            auto_bind=True,
            receive_timeout=10,
            raise_exceptions=True,
        )


def _slapd_config(workdir: Path, password: str) -> Path:
    schema_dir = Path("/etc/ldap/schema")
    lines = [f"include {schema_dir / (name + '.schema')}" for name in SCHEMAS]
    lines += [
        f"pidfile {workdir / 'slapd.pid'}",
        "modulepath /usr/lib/ldap",
        "moduleload back_mdb",
        "database mdb",
        "maxsize 104857600",
        f'suffix "{LDAP_BASE}"',
        f'rootdn "{LDAP_ADMIN}"',
        f"rootpw {password}",
        f"directory {workdir / 'data'}",
        "index objectClass eq",
        "index member,uniqueMember,roleOccupant,seeAlso eq",
    ]
    (workdir / "data").mkdir()
    config = workdir / "slapd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """A throwaway OpenLDAP server on a free port, with base dc=example,dc=org and ou=people,
    ou=groups under it; stopped and removed at the end of the session."""
    binary = shutil.which("slapd") or ("/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else None)
    if binary is None or not Path("/etc/ldap/schema/core.schema").exists():
        _need_service("OpenLDAP slapd (apt-get install slapd ldap-utils)", FileNotFoundError("slapd"))
    assert binary is not None
    workdir = Path(tempfile.mkdtemp(prefix="sluice-slapd-"))
    password = "admin-" + os.urandom(6).hex()
    password_file = workdir / "admin-password"
    password_file.write_text(password + "\n")
    config = _slapd_config(workdir, password)
    port = free_port()
    log = (workdir / "slapd.log").open("wb")
    process = subprocess.Popen(
        [binary, "-d", "0", "-h", f"ldap://127.0.0.1:{port}/", "-f", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        if not wait_for_port(port, 15):
            process.kill()
            _need_service("slapd", RuntimeError((workdir / "slapd.log").read_text(errors="replace")[-2000:]))
        server = Slapd(f"ldap://127.0.0.1:{port}", port, LDAP_BASE, LDAP_ADMIN, password, str(password_file))
        conn = server.admin()
        conn.add(LDAP_BASE, ["dcObject", "organization"], {"dc": "example", "o": "Example"})
        for ou in ("people", "groups"):
            conn.add(f"ou={ou},{LDAP_BASE}", ["organizationalUnit"], {"ou": ou})
        conn.unbind()
        yield server
    finally:
        stop(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --- the reference endpoint of the custom HTTP connector, over HTTPS with a throwaway CA


@dataclass(frozen=True)
class HttpEndpoint:
    base: str  # https://127.0.0.1:PORT
    port: int
    ca_file: str
    secret_file: str
    admin_token: str

    @property
    def protocol_url(self) -> str:
        return f"{self.base}/sluice/v1"


def write_test_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost: (ca, cert, key) PEM files."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import ip_address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (workdir / "ca.pem", workdir / "cert.pem", workdir / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture(scope="session")
def http_endpoint() -> Iterator[HttpEndpoint]:
    """examples/http_connector/server.py as its own process, on a free port, over HTTPS."""
    import sys

    workdir = Path(tempfile.mkdtemp(prefix="sluice-http-"))
    ca, cert, key = write_test_certificates(workdir)
    secret_file, token_file = workdir / "secret", workdir / "admin-token"
    secret_file.write_text(os.urandom(16).hex() + "\n")
    admin_token = os.urandom(12).hex()
    token_file.write_text(admin_token)
    port = free_port()
    server = Path(__file__).resolve().parent.parent / "examples" / "http_connector" / "server.py"
    command = [sys.executable, str(server), "--port", str(port), "--secret-file", str(secret_file)]
    command += ["--admin-token-file", str(token_file), "--cert", str(cert), "--key", str(key)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not wait_for_port(port, 15):
            process.kill()
            pytest.fail(f"the reference HTTP endpoint did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
        yield HttpEndpoint(f"https://127.0.0.1:{port}", port, str(ca), str(secret_file), admin_token)
    finally:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


# --- a real OpenSSH server that trusts a throwaway certificate authority


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str  # the account the tests log in as: the one running the tests
    ca_key_file: str  # the CA's private key (OpenSSH format), as the SSH connector's ca_key reads it
    ca_public_file: str
    krl_path: str  # the KRL sshd loads with RevokedKeys
    principals_dir: str  # AuthorizedPrincipalsFile %u files: which `{account}@{host}` each account takes

    def allow(self, principal: str) -> None:
        """Let the test account accept certificates naming `principal` (a host label, in effect)."""
        path = Path(self.principals_dir) / self.user
        lines = set(path.read_text().split()) if path.exists() else set()
        path.write_text("\n".join(sorted(lines | {principal})) + "\n")


def ssh_login(sshd: Sshd, key_text: str, certificate: str, *, user: str | None = None) -> bool:
    """Whether the real `ssh` client logs in to `sshd` with this key and certificate and runs a command."""
    with tempfile.TemporaryDirectory(prefix="sluice-ssh-client-") as folder:
        key, cert = Path(folder) / "id", Path(folder) / "id-cert.pub"
        key.write_text(key_text)
        key.chmod(0o600)
        cert.write_text(certificate + "\n")
        command = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", f"CertificateFile={cert}"]
        command += ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"]
        command += ["-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]
        command += ["-p", str(sshd.port), f"{user or sshd.user}@127.0.0.1", "echo sluice-ok"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
        return done.returncode == 0 and "sluice-ok" in done.stdout


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """Debian's sshd on a free port, trusting only certificates of a CA made here, loading its KRL
    and principals files from a temporary directory; stopped and removed at the end of the session."""
    import getpass

    binary = "/usr/sbin/sshd"
    if not os.path.exists(binary) or shutil.which("ssh") is None:
        _need_service("OpenSSH server (apt-get install openssh-server)", FileNotFoundError("sshd"))
    workdir = Path(tempfile.mkdtemp(prefix="sluice-sshd-"))
    workdir.chmod(0o755)
    for key in ("host", "ca"):
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"sluice test {key}",
                "-f",
                str(workdir / key),
            ],
            check=True,
        )
    principals = workdir / "principals"
    principals.mkdir()
    krl = workdir / "revoked.krl"
    subprocess.run(["ssh-keygen", "-q", "-k", "-f", str(krl)], check=True)  # an empty KRL
    port = free_port()
    user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {workdir / 'host'}",
                f"PidFile {workdir / 'sshd.pid'}",
                f"TrustedUserCAKeys {workdir / 'ca.pub'}",
                f"RevokedKeys {krl}",
                f"AuthorizedPrincipalsFile {principals}/%u",
                "AuthorizedKeysFile none",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "StrictModes no",
                "LogLevel VERBOSE",
            ]
        )
        + "\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = (workdir / "sshd.log").open("wb")
    process = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, 15):
            process.kill()
            _need_service("sshd", RuntimeError((workdir / "sshd.log").read_text(errors="replace")[-2000:]))
        yield Sshd(port, user, str(workdir / "ca"), str(workdir / "ca.pub"), str(krl), str(principals))
    finally:
        stop(process)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
