"""Connection details typed per kind, and the client hints built from them: each kind gets its own
client (a MariaDB grant is never offered `psql`), the password never sits on a command line, and
the environment holds what the client reads."""

from __future__ import annotations

import shlex

from sluice.domain.connection import (
    LdapGroupConnection,
    MySQLConnection,
    OtherConnection,
    PostgresConnection,
    RedisConnection,
    client_command,
    client_env,
    connection_of,
    env_lines,
)

PG = {
    "host": "db.internal",
    "port": 5432,
    "database": "app db",
    "username": "sluice_ab12",
    "sslmode": "verify-full",
}
MARIADB = {
    "host": "10.0.0.5",
    "port": 3306,
    "database": "shop",
    "table": "orders",
    "username": "sluice_1234567_ab",
    "tls": True,
    "flavor": "mariadb",
}
REDIS = {"host": "cache", "port": 6380, "tls": True, "username": "sluice_1234567_ab", "key_prefix": "sess:"}
LDAP = {
    "url": "ldaps://ldap.internal",
    "group": "cn=admins,ou=groups,dc=example,dc=org",
    "member": "uid=ada(x),ou=people,dc=example,dc=org",
    "attribute": "member",
}


def test_each_kind_reads_into_its_own_model_and_keeps_every_detail() -> None:
    mysql = connection_of("mysql", {**MARIADB, "password": "pw"})
    assert isinstance(mysql, MySQLConnection)
    assert (mysql.table, mysql.tls, mysql.flavor) == ("orders", True, "mariadb")
    assert "password" not in mysql.model_dump()
    redis = connection_of("redis", REDIS)
    assert isinstance(redis, RedisConnection) and redis.key_prefix == "sess:" and redis.tls
    assert isinstance(connection_of("ldap_groups", LDAP), LdapGroupConnection)
    assert isinstance(connection_of("postgresql", PG), PostgresConnection)
    other = connection_of("http", {"endpoint": "wiki", "password": "pw"})
    assert other == OtherConnection(kind="http", details={"endpoint": "wiki"})
    # details an older connector wrote, that do not fit the model, are kept rather than lost
    assert connection_of("redis", {"host": "cache"}) == OtherConnection(
        kind="redis", details={"host": "cache"}
    )


def test_each_kind_gets_its_own_client_with_tls_flags() -> None:
    pg = client_command(connection_of("postgresql", PG)) or ""
    assert shlex.split(pg) == [
        "psql",
        "host=db.internal port=5432 dbname='app db' user=sluice_ab12 sslmode=verify-full",
    ]
    mariadb = shlex.split(client_command(connection_of("mysql", MARIADB)) or "")
    assert mariadb[0] == "mysql" and "--ssl-verify-server-cert" in mariadb and mariadb[-1] == "shop"
    mysql8 = shlex.split(client_command(connection_of("mysql", {**MARIADB, "flavor": "mysql"})) or "")
    assert "--ssl-mode=VERIFY_IDENTITY" in mysql8
    redis = shlex.split(client_command(connection_of("redis", REDIS)) or "")
    assert redis[:5] == ["redis-cli", "-h", "cache", "-p", "6380"] and "--tls" in redis
    ldap = shlex.split(client_command(connection_of("ldap_groups", LDAP)) or "")
    assert ldap[0] == "ldapsearch" and "(member=uid=ada\\28x\\29,ou=people,dc=example,dc=org)" in ldap
    assert client_command(connection_of("builtin_groups", {"group": "oncall"})) is None


def test_the_password_is_in_the_environment_never_on_the_command_line() -> None:
    for kind, details, variable in (
        ("postgresql", PG, "PGPASSWORD"),
        ("mysql", MARIADB, "MYSQL_PWD"),
        ("redis", REDIS, "REDISCLI_AUTH"),
    ):
        connection = connection_of(kind, {**details, "password": "s3cret 'x'"})
        assert "s3cret" not in (client_command(connection) or "")
        assert client_env(connection, "s3cret 'x'")[variable] == "s3cret 'x'"
    env = client_env(connection_of("postgresql", PG), "pw")
    assert env == {
        "PGHOST": "db.internal",
        "PGPORT": "5432",
        "PGDATABASE": "app db",
        "PGUSER": "sluice_ab12",
        "PGSSLMODE": "verify-full",
        "PGPASSWORD": "pw",
    }
    assert env_lines({"PGDATABASE": "app db", "PGPASSWORD": "a'b"}) == [
        "export PGDATABASE='app db'",
        "export PGPASSWORD='a'\"'\"'b'",
    ]
