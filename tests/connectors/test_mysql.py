"""The MySQL / MariaDB connector beyond the conformance suite: quoting, wildcards in database names,
what each permission allows, markers, and what check() says about a weak admin account."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sluice.connectors.base import AccessUnit, ConnectorContext, ManagedPrincipal, SecretRef
from sluice.connectors.mysql import MySQLConfig, MySQLConnector
from sluice.connectors.mysql_sql import database_pattern, native_password_hash, quote_identifier
from sluice.connectors.support import integration_tag
from sluice.domain.errors import TargetError
from tests.connectors.conformance.mysql import MySQLHarness, mysql_harness

NAME = "conf-mysql"


@pytest.fixture(scope="module")
def harness(mysql_server: dict[str, Any]) -> Iterator[MySQLHarness]:
    yield from mysql_harness(mysql_server)


@pytest.fixture(scope="module")
def lookalikes(harness: MySQLHarness) -> Iterator[tuple[str, str]]:
    """`sl_<x>_db` and `sl<x>Xdb`: a grant on the first must not open the second."""
    tag = secrets.token_hex(3)
    wanted, lookalike = f"sl_{tag}_db", f"sl_{tag}Xdb"
    with harness.admin() as conn, conn.cursor() as cur:
        for db in (wanted, lookalike):
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"CREATE TABLE `{db}`.t (id int)")
    yield wanted, lookalike
    with harness.admin() as conn, conn.cursor() as cur:
        for db in (wanted, lookalike):
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")


def unit_on(harness: MySQLHarness, path: str, resource_type: str, permission: str) -> AccessUnit:
    grant_id = f"gr_{secrets.token_hex(6)}"
    return AccessUnit(
        grant_id,
        harness.connector.principal_for(grant_id, "ada@example.com"),
        "ada@example.com",
        resource_type,
        path,
        permission,
        None,
        secrets.token_urlsafe(18),
    )


def run_as(unit: AccessUnit, details: dict[str, Any], statement: str) -> bool:
    try:
        conn = pymysql.connect(
            host=details["host"],
            port=details["port"],
            user=unit.principal,
            password=unit.secret or "",
            connect_timeout=5,
            autocommit=True,
        )
        with conn, conn.cursor() as cur:
            cur.execute(statement)
    except pymysql.err.MySQLError:
        return False
    return True


# --- pure helpers


@given(st.text(min_size=1, max_size=64).filter(lambda s: "\0" not in s))
def test_quoted_identifiers_are_one_token(name: str) -> None:
    quoted = quote_identifier(name)
    inner = quoted[1:-1].replace("%%", "%")
    assert quoted[0] == quoted[-1] == "`"
    assert inner.replace("``", "").count("`") == 0
    assert inner.replace("``", "`") == name


def test_identifiers_that_cannot_be_quoted_are_refused() -> None:
    for bad in ("", "a\0b", "x" * 65):
        with pytest.raises(ValueError):
            quote_identifier(bad)


def test_database_patterns_escape_wildcards() -> None:
    assert database_pattern("a_b%c\\d") == "a\\_b\\%c\\\\d"


def test_native_password_hash_matches_the_server(harness: MySQLHarness) -> None:
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT PASSWORD(%s)", ("pässwörd; 'x'",))
        (theirs,) = cur.fetchone()
    assert native_password_hash("pässwörd; 'x'") == theirs


def test_config_rejects_unknown_fields_plain_passwords_and_bad_names() -> None:
    with pytest.raises(ValidationError):
        MySQLConfig.model_validate({"password": "hunter2"})
    with pytest.raises(ValidationError):
        MySQLConfig.model_validate({"hostname": "db"})
    for prefix in ("Sluice_", "a-b", "", "x" * 13, "1abc"):
        with pytest.raises(ValidationError):
            MySQLConfig(user_prefix=prefix)
    with pytest.raises(ValidationError):
        MySQLConfig(user_host="a' OR '1")


def test_the_host_part_of_accounts_is_never_any_host_by_default() -> None:
    with pytest.raises(ValidationError, match="user_host"):
        MySQLConfig.model_validate({"host": "db.internal"})
    assert MySQLConfig(user_host="10.0.%").user_host == "10.0.%"


# --- against the server


def test_a_database_grant_does_not_open_a_lookalike_database(
    harness: MySQLHarness, lookalikes: tuple[str, str]
) -> None:
    wanted, lookalike = lookalikes
    unit = unit_on(harness, f"{NAME}/{wanted}", "database", "read")
    details = harness.connector.grant(unit)
    assert run_as(unit, details, f"SELECT * FROM `{wanted}`.t")
    assert not run_as(unit, details, f"SELECT * FROM `{lookalike}`.t")
    harness.connector.revoke(unit)


def test_read_write_and_admin_on_a_database(harness: MySQLHarness, lookalikes: tuple[str, str]) -> None:
    db = lookalikes[0]
    read, write, admin = (unit_on(harness, f"{NAME}/{db}", "database", p) for p in ("read", "write", "admin"))
    as_read, as_write, as_admin = (harness.connector.grant(u) for u in (read, write, admin))
    assert run_as(read, as_read, f"SELECT * FROM `{db}`.t")
    assert not run_as(read, as_read, f"INSERT INTO `{db}`.t VALUES (1)")
    assert run_as(write, as_write, f"INSERT INTO `{db}`.t VALUES (2)")
    assert not run_as(write, as_write, f"CREATE TABLE `{db}`.w (id int)")
    assert run_as(admin, as_admin, f"CREATE TABLE `{db}`.a (id int)")
    assert run_as(admin, as_admin, f"DROP TABLE `{db}`.a")
    assert not run_as(admin, as_admin, "SELECT * FROM mysql.user")
    for unit in (read, write, admin):
        harness.connector.revoke(unit)


def test_list_managed_reads_the_name_and_ignores_lookalike_accounts(harness: MySQLHarness) -> None:
    prefix = harness.config.user_prefix
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'x'", (prefix + "notours",))
    unit = harness.unit()
    harness.connector.grant(unit)
    managed = harness.connector.list_managed()
    assert [m.principal for m in managed] == [unit.principal]
    assert managed[0].grant_id == unit.grant_id
    other = MySQLConnector("other-mysql", harness.config, ConnectorContext(installation="test-install"))
    assert other.list_managed() == []
    harness.connector.revoke(unit)
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("DROP USER %s@'%%'", (prefix + "notours",))


def test_accounts_that_are_not_the_grants_are_never_touched(harness: MySQLHarness) -> None:
    unit = harness.unit()
    other_grant = unit.principal[:-1] + ("1" if unit.principal.endswith("0") else "0")
    for principal in ("root", other_grant, harness.unit().principal):
        with pytest.raises(TargetError) as caught:
            harness.connector.revoke(AccessUnit(**{**unit.__dict__, "principal": principal}))
        assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("path", "resource_type", "permission", "retryable"),
    [
        (f"{NAME}/sluice_no_such_db", "database", "read", False),
        ("other/x", "database", "read", False),
        (f"{NAME}/a/b/c", "table", "read", False),
        (f"{NAME}/a", "table", "read", False),
        (f"{NAME}/a", "database", "member", False),
    ],
)
def test_bad_targets_are_lasting_errors(
    harness: MySQLHarness, path: str, resource_type: str, permission: str, retryable: bool
) -> None:
    with pytest.raises(TargetError) as caught:
        harness.connector.grant(unit_on(harness, path, resource_type, permission))
    assert caught.value.retryable is retryable


def test_admin_secrets_never_show_in_errors(harness: MySQLHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICE_TEST_MYSQL_PASSWORD", "hunter2-secret")
    config = harness.config.model_copy(
        update={"user": "hunter2-secret", "password": SecretRef(env="SLUICE_TEST_MYSQL_PASSWORD")}
    )
    bad = MySQLConnector(NAME, config, ConnectorContext(installation="test-install"))
    with pytest.raises(TargetError) as caught:
        bad.list_managed()
    assert "hunter2" not in str(caught.value) and caught.value.retryable is True
    assert "hunter2" not in " ".join(bad.check())


def test_check_says_what_a_weak_admin_account_lacks(harness: MySQLHarness) -> None:
    weak, password = f"sw{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (weak, password))
        cur.execute("GRANT SELECT ON *.* TO %s@'%%'", (weak,))
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLUICE_TEST_WEAK", password)
            config = harness.config.model_copy(
                update={"user": weak, "password": SecretRef(env="SLUICE_TEST_WEAK")}
            )
            problems = MySQLConnector(NAME, config, ConnectorContext(installation="test-install")).check()
        text = " ".join(problems)
        assert "CREATE USER" in text and "CONNECTION ADMIN" in text and "GRANT OPTION" in text
        assert "EVENT" in text  # no second lock without it
    finally:
        with harness.admin() as conn, conn.cursor() as cur:
            cur.execute("DROP USER %s@'%%'", (weak,))


def test_a_legacy_account_is_listed_as_legacy_and_still_revoked(harness: MySQLHarness) -> None:
    """An account named before names carried the installation (`{prefix}{integration tag}_{grant}`)."""
    grant_id = f"gr_{secrets.token_hex(6)}"
    legacy_name = f"{harness.config.user_prefix}{integration_tag(NAME)}_{grant_id[3:]}"
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (legacy_name, secrets.token_urlsafe(12)))
    try:
        listed = [m for m in harness.connector.list_managed() if m.grant_id == grant_id]
        assert listed == [ManagedPrincipal(legacy_name, grant_id, legacy=True)]
        harness.connector.revoke(AccessUnit(grant_id, legacy_name, "", "", "", ""))
        assert grant_id not in {m.grant_id for m in harness.connector.list_managed()}
    finally:
        with harness.admin() as conn, conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (legacy_name,))


def test_admin_cannot_create_objects_that_would_run_as_the_temporary_account(
    harness: MySQLHarness, lookalikes: tuple[str, str]
) -> None:
    """A view, trigger, routine or event keeps its DEFINER; once the account is dropped, the owner's
    own statements that fire it fail (error 1449). So `admin` does not include creating them."""
    db = lookalikes[0]
    admin = unit_on(harness, f"{NAME}/{db}", "database", "admin")
    details = harness.connector.grant(admin)
    assert run_as(admin, details, f"CREATE TABLE `{db}`.own (id int)")
    assert not run_as(admin, details, f"CREATE VIEW `{db}`.v AS SELECT 1")
    assert not run_as(
        admin, details, f"CREATE TRIGGER `{db}`.tr BEFORE INSERT ON `{db}`.t FOR EACH ROW SET @x = 1"
    )
    assert not run_as(admin, details, f"CREATE PROCEDURE `{db}`.p() SELECT 1")
    assert not run_as(admin, details, f"CREATE EVENT `{db}`.e ON SCHEDULE EVERY 1 DAY DO SELECT 1")
    table = unit_on(harness, f"{NAME}/{db}/t", "table", "admin")
    on_table = harness.connector.grant(table)
    assert not run_as(
        table, on_table, f"CREATE TRIGGER `{db}`.tr2 BEFORE INSERT ON `{db}`.t FOR EACH ROW SET @x = 1"
    )
    assert run_as(table, on_table, f"ALTER TABLE `{db}`.t ADD COLUMN note text")
    for unit in (admin, table):
        harness.connector.revoke(unit)
    assert run_as_admin_insert(harness, db)


def run_as_admin_insert(harness: MySQLHarness, db: str) -> bool:
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{db}`.t (id) VALUES (7)")
    return True


def test_an_account_takes_a_bounded_number_of_connections(
    harness: MySQLHarness, lookalikes: tuple[str, str]
) -> None:
    conn = MySQLConnector(
        NAME,
        harness.config.model_copy(update={"max_user_connections": 2}),
        ConnectorContext(installation="test-install"),
    )
    unit = unit_on(harness, f"{NAME}/{lookalikes[0]}", "database", "read")
    details = conn.grant(unit)
    opened = []
    try:
        for _ in range(2):
            opened.append(
                pymysql.connect(
                    host=details["host"], port=details["port"], user=unit.principal, password=unit.secret
                )
            )
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(
                host=details["host"], port=details["port"], user=unit.principal, password=unit.secret
            )
        assert refused.value.args[0] == 1226  # max_user_connections
    finally:
        for session in opened:
            session.close()
        conn.revoke(unit)


def _accounts(harness: MySQLHarness, user: str) -> int:
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,))
        return int(cur.fetchone()[0])


def _events(harness: MySQLHarness, user: str) -> int:
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_NAME = %s", (user,))
        return int(cur.fetchone()[0])


def test_a_scheduled_event_drops_the_account_when_sluice_cannot(
    harness: MySQLHarness, lookalikes: tuple[str, str]
) -> None:
    """The second lock: with the worker gone (nothing calls revoke), the server itself drops the
    account at the grant's end plus the margin."""
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute("SET GLOBAL event_scheduler = ON")
    conn = MySQLConnector(
        NAME,
        harness.config.model_copy(update={"expiry_margin_seconds": 0}),
        ConnectorContext(installation="test-install"),
    )
    unit = replace(
        unit_on(harness, f"{NAME}/{lookalikes[0]}", "database", "read"),
        ends_at=datetime.now(UTC) + timedelta(seconds=2),
    )
    details = conn.grant(unit)
    assert run_as(unit, details, "SELECT 1")
    assert _events(harness, unit.principal) == 1
    deadline = time.monotonic() + 15
    while _accounts(harness, unit.principal) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert _accounts(harness, unit.principal) == 0
    assert not run_as(unit, details, "SELECT 1")
    conn.revoke(unit)


def test_revoke_removes_the_scheduled_event(harness: MySQLHarness, lookalikes: tuple[str, str]) -> None:
    unit = replace(
        unit_on(harness, f"{NAME}/{lookalikes[0]}", "database", "read"),
        ends_at=datetime.now(UTC) + timedelta(hours=1),
    )
    harness.connector.grant(unit)
    harness.connector.grant(unit)  # granted again (an extension): still one event
    assert _events(harness, unit.principal) == 1
    harness.connector.revoke(unit)
    assert _events(harness, unit.principal) == 0


def test_check_warns_about_accounts_open_to_any_host(harness: MySQLHarness) -> None:
    config = harness.config.model_copy(update={"user_host": "%"})
    problems = MySQLConnector(NAME, config, ConnectorContext(installation="test-install")).check()
    assert any("'%'" in p and "any host" in p for p in problems)


def test_check_names_objects_left_with_a_sluice_definer(
    harness: MySQLHarness, lookalikes: tuple[str, str]
) -> None:
    """Made before `admin` stopped allowing them (or by hand): they break once the account goes."""
    db, definer = lookalikes[0], harness.config.user_prefix + "gone"
    with harness.admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DEFINER = %s@'%%' VIEW `{db}`.left_behind AS SELECT 1 AS one", (definer,))
    try:
        problems = harness.connector.check()
        assert any("DEFINER" in p and f"view {db}.left_behind" in p for p in problems), problems
    finally:
        with harness.admin() as conn, conn.cursor() as cur:
            cur.execute(f"DROP VIEW `{db}`.left_behind")
    assert harness.connector.check() == []
