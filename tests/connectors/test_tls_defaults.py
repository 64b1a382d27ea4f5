"""TLS toward targets: on by default toward any host that is not this machine, for every connector;
turned off there, `check` says in plain words that passwords cross the network in clear.

The servers here speak no TLS, so "TLS is on" shows as a refused connection when a connector reaches
them by a name that is not a loopback address (a name from /etc/hosts that resolves to 127.0.0.1)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from sluice.connectors.base import ConnectorContext, SecretRef
from sluice.connectors.ldap_groups import LdapGroupsConfig, LdapGroupsConnector
from sluice.connectors.mysql import MySQLConfig, MySQLConnector
from sluice.connectors.postgres import PostgresConfig, PostgresConnector
from sluice.connectors.redis_acl import RedisConfig, RedisConnector
from sluice.connectors.support import is_loopback
from tests.target_servers import Slapd

CONTEXT = ConnectorContext(installation="test-install")


@pytest.fixture(scope="module")
def remote_name() -> str:
    """A host name that reaches this machine but is not `localhost` nor a loopback address."""
    names = [socket.gethostname()]
    for line in Path("/etc/hosts").read_text().splitlines():
        names += line.split("#", 1)[0].split()[1:]
    for name in names:
        try:
            address = socket.gethostbyname(name)
        except OSError:
            continue
        if address == "127.0.0.1" and not is_loopback(name):
            return name
    pytest.fail("no host name resolves to 127.0.0.1 besides localhost; add one to /etc/hosts")


def test_loopback_is_this_machine_only() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "/run/postgresql", ""):
        assert is_loopback(host), host
    for host in ("10.0.0.5", "db.internal", "localhost.example.org", "8.8.8.8"):
        assert not is_loopback(host), host


def _pg(postgres_admin_url: str, **changes: Any) -> PostgresConnector:
    params = conninfo_to_dict(postgres_admin_url)
    config = PostgresConfig(
        host=str(params["host"]), port=int(params.get("port") or 5432), user=str(params["user"])
    )
    return PostgresConnector("tls-pg", config.model_copy(update=changes), CONTEXT)


def test_postgresql_verifies_the_server_beyond_loopback(postgres_admin_url: str, remote_name: str) -> None:
    assert _pg(postgres_admin_url).check() == []  # loopback: as before
    [problem] = _pg(postgres_admin_url, host=remote_name).check()
    assert problem.startswith("cannot connect") and "SSL" in problem
    plain = _pg(postgres_admin_url, host=remote_name, sslmode="disable").check()
    assert plain and "PLAINTEXT" in plain[0] and remote_name in plain[0] and "sslmode=disable" in plain[0]
    assert not any(p.startswith("cannot connect") for p in plain)


def test_mysql_verifies_the_server_beyond_loopback(mysql_server: dict[str, Any], remote_name: str) -> None:
    config = MySQLConfig(host=remote_name, port=int(mysql_server["port"]), user="root", user_host="127.0.0.1")
    problems = MySQLConnector("tls-mysql", config, CONTEXT).check()
    assert problems[0].startswith("cannot connect") and "SSL" in problems[0]
    plain = MySQLConnector("tls-mysql", config.model_copy(update={"tls": False}), CONTEXT).check()
    assert "PLAINTEXT" in plain[0] and "tls: false" in plain[0]
    assert not any(p.startswith("cannot connect") for p in plain)


def test_redis_verifies_the_server_beyond_loopback(redis_server: dict[str, Any], remote_name: str) -> None:
    config = RedisConfig(
        host=remote_name, port=int(redis_server["port"]), connect_timeout_seconds=2, timeout_seconds=2
    )
    problems = RedisConnector("tls-redis", config, CONTEXT).check()
    assert problems[0].startswith("cannot connect")
    plain = RedisConnector("tls-redis", config.model_copy(update={"tls": False}), CONTEXT).check()
    assert plain == [p for p in plain if "PLAINTEXT" in p] and plain
    assert (
        RedisConnector("tls-redis", config.model_copy(update={"host": "127.0.0.1"}), CONTEXT).check() == []
    )  # loopback: no TLS asked, no warning


def test_ldap_binds_with_start_tls_beyond_loopback(slapd: Slapd, remote_name: str) -> None:
    config = LdapGroupsConfig(
        url=f"ldap://{remote_name}:{slapd.port}",
        bind_dn=slapd.admin_dn,
        bind_password=SecretRef(file=slapd.password_file),
        groups_base_dn=slapd.base,
        user_dn_template=f"uid={{local}},ou=people,{slapd.base}",
        state_dn=slapd.base,
    )
    problems = LdapGroupsConnector("tls-ldap", config, CONTEXT).check()
    assert problems and problems[0].startswith("cannot connect")
    plain = LdapGroupsConnector("tls-ldap", config.model_copy(update={"start_tls": False}), CONTEXT).check()
    assert plain == [next(p for p in plain if "PLAINTEXT" in p and "start_tls: false" in p)]
