"""The Redis connector beyond the conformance suite: key patterns, read against write, scanning with a
bound, hashed passwords, markers, and what check() says about a weak admin user."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from sluice.connectors.base import AccessUnit, ConnectorContext, ManagedPrincipal, SecretRef
from sluice.connectors.redis_acl import RedisConfig, RedisConnector
from sluice.connectors.support import integration_tag
from sluice.domain.errors import TargetError
from tests.connectors.conformance.redis import RedisHarness, redis_harness

NAME = "conf-redis"
SCAN_DB = 11


@pytest.fixture(scope="module")
def harness(redis_server: dict[str, Any]) -> Iterator[RedisHarness]:
    yield from redis_harness(redis_server)


def connector(harness: RedisHarness, **changes: Any) -> RedisConnector:
    config = RedisConfig.model_validate({**harness.config.model_dump(), **changes})
    return RedisConnector(NAME, config, ConnectorContext(installation="test-install"))


def grant(conn: RedisConnector, path: str, permission: str) -> tuple[AccessUnit, redis.Redis]:
    grant_id = f"gr_{secrets.token_hex(6)}"
    unit = AccessUnit(
        grant_id,
        conn.principal_for(grant_id, "ada@example.com"),
        "ada@example.com",
        "namespace",
        path,
        permission,
        None,
        secrets.token_urlsafe(18),
    )
    details = conn.grant(unit)
    client = redis.Redis(
        port=details["port"], username=details["username"], password=unit.secret, socket_timeout=5
    )
    return unit, client


def refused(action: Any) -> bool:
    try:
        action()
    except redis.ResponseError as exc:
        return "NOPERM" in str(exc) or "no permissions" in str(exc)
    return False


def test_config_refuses_prefixes_and_rules_that_are_not_single_tokens() -> None:
    for prefix in ("a b:", "tab\t", "", "new\nline"):
        with pytest.raises(ValidationError):
            RedisConfig.model_validate({"namespaces": [{"name": "x", "prefix": prefix}]})
    for rules in ({"read": ["+@read on"], "write": []}, {"read": [">pw"], "write": []}, {"read": []}):
        with pytest.raises(ValidationError):
            RedisConfig.model_validate({"rules": rules})
    with pytest.raises(ValidationError):
        RedisConfig.model_validate({"password": "hunter2"})


def test_read_reads_its_namespace_only_and_write_writes_it(harness: RedisHarness) -> None:
    prefix = harness.prefixes["orders"]
    unit, reader = grant(harness.connector, f"{NAME}/orders", "read")
    assert reader.get(prefix + "1") == b"tea"
    assert refused(lambda: reader.set(prefix + "1", "coffee"))
    assert refused(lambda: reader.get("elsewhere:1"))
    assert refused(lambda: reader.keys("*"))  # a dangerous command, even for reading
    assert refused(lambda: reader.publish("news", "hi"))  # no pub/sub channels
    writer_unit, writer = grant(harness.connector, f"{NAME}/orders", "write")
    writer.set(prefix + "2", "cake")
    assert refused(lambda: writer.flushdb())
    assert refused(lambda: writer.set("elsewhere:2", "x"))
    for u in (unit, writer_unit):
        harness.connector.revoke(u)


def test_glob_characters_in_a_prefix_are_literal(harness: RedisHarness, redis_server: dict[str, Any]) -> None:
    tag = secrets.token_hex(3)
    conn = connector(harness, namespaces=[{"name": "star", "prefix": f"g{tag}:a*["}])
    admin = harness.admin()
    admin.set(f"g{tag}:a*[1", "mine")
    admin.set(f"g{tag}:abc[1", "not mine")
    unit, client = grant(conn, f"{NAME}/star", "read")
    assert client.get(f"g{tag}:a*[1") == b"mine"
    assert refused(lambda: client.get(f"g{tag}:abc[1"))
    conn.revoke(unit)
    admin.delete(f"g{tag}:a*[1", f"g{tag}:abc[1")


def test_the_server_gets_a_hash_of_the_password_never_the_password(harness: RedisHarness) -> None:
    unit, _ = grant(harness.connector, f"{NAME}/orders", "read")
    user = harness.admin().acl_getuser(unit.principal)
    assert user["passwords"] == [hashlib.sha256((unit.secret or "").encode()).hexdigest()]
    harness.connector.revoke(unit)


def test_scanning_finds_namespaces_within_its_bound(harness: RedisHarness) -> None:
    admin = redis.Redis(port=harness.server["port"], db=SCAN_DB)
    tag = secrets.token_hex(3)
    keys = [f"s{tag}a:1", f"s{tag}a:2", f"s{tag}b:1", f"s{tag}plain", f"s{tag}sp ace:1"]
    for key in keys:
        admin.set(key, "v")
    try:
        found = {r.name: r for r in connector(harness, scan={"db": SCAN_DB}).discover()}
        assert {f"s{tag}a", f"s{tag}b"} <= set(found)
        assert found[f"s{tag}a"].tags == {"found_by": "scan"}
        assert f"s{tag}plain" not in found and f"s{tag}sp ace" not in found  # no separator; not a token
        assert found["orders"].tags == {"pii": "true"}  # declared namespaces are still there
        bounded = connector(harness, scan={"db": SCAN_DB, "max_keys": 1, "batch": 1}).discover()
        assert len([r for r in bounded if r.tags.get("found_by")]) <= 1
        unit, client = grant(connector(harness, scan={"db": SCAN_DB}), f"{NAME}/s{tag}a", "read")
        assert client.get(f"s{tag}a:1") is None  # the pattern holds in every database; this one is db 0
        assert refused(lambda: client.get(f"s{tag}b:1"))
        harness.connector.revoke(unit)  # the namespace is not in this config: the revoke still goes through
        assert harness.admin().acl_getuser(unit.principal) is None
    finally:
        admin.delete(*keys)


def test_users_that_are_not_the_grants_are_never_touched(harness: RedisHarness) -> None:
    unit = harness.unit()
    for principal in ("default", harness.unit().principal):
        with pytest.raises(TargetError) as caught:
            harness.connector.revoke(AccessUnit(**{**unit.__dict__, "principal": principal}))
        assert caught.value.retryable is False
    assert harness.admin().acl_getuser("default") is not None
    other = RedisConnector("other-redis", harness.config, ConnectorContext(installation="test-install"))
    harness.connector.grant(unit)
    assert unit.principal not in {m.principal for m in other.list_managed()}
    harness.connector.revoke(unit)


def test_check_names_what_a_weak_admin_user_may_not_run(harness: RedisHarness) -> None:
    weak, password = f"sw{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    admin = harness.admin()
    admin.execute_command(
        "ACL", "SETUSER", weak, "on", ">" + password, "~*", "+@read", "+@connection", "+acl|whoami", "+info"
    )
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLUICE_TEST_WEAK_REDIS", password)
            weak_conn = connector(harness, username=weak, password={"env": "SLUICE_TEST_WEAK_REDIS"})
            (problem,) = weak_conn.check()
        assert "ACL SETUSER" in problem and "CLIENT KILL" in problem and password not in problem
    finally:
        admin.execute_command("ACL", "DELUSER", weak)


def test_a_wrong_admin_password_is_retryable_and_never_shown(
    harness: RedisHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_TEST_BAD_REDIS", "hunter2-secret")
    bad = RedisConnector(
        NAME,
        harness.config.model_copy(
            update={"username": "nobody", "password": SecretRef(env="SLUICE_TEST_BAD_REDIS")}
        ),
        ConnectorContext(installation="test-install"),
    )
    with pytest.raises(TargetError) as caught:
        bad.list_managed()
    assert caught.value.retryable is True and "hunter2" not in str(caught.value)


def test_a_legacy_user_is_listed_as_legacy_and_still_revoked(harness: RedisHarness) -> None:
    """A user named before names carried the installation (`{prefix}{integration tag}_{grant}`)."""
    grant_id = f"gr_{secrets.token_hex(6)}"
    legacy_name = f"{harness.config.user_prefix}{integration_tag(NAME)}_{grant_id[3:]}"
    unit = AccessUnit(grant_id, legacy_name, "ada@example.com", "", "", "")
    harness.admin().execute_command("ACL", "SETUSER", legacy_name, "on", "nopass", "~legacy:*", "+get")
    try:
        listed = [m for m in harness.connector.list_managed() if m.grant_id == grant_id]
        assert listed == [ManagedPrincipal(legacy_name, grant_id, legacy=True)]
        harness.connector.revoke(unit)
        assert harness.admin().acl_getuser(legacy_name) is None
    finally:
        harness.admin().execute_command("ACL", "DELUSER", legacy_name)


@pytest.mark.parametrize("permission", ["read", "write"])
def test_a_grant_cannot_list_key_names_or_leave_its_database(harness: RedisHarness, permission: str) -> None:
    unit, client = grant(harness.connector, f"{NAME}/orders", permission)
    assert refused(lambda: client.scan(0))  # SCAN would name every key on the server
    assert refused(lambda: client.keys("*"))
    assert refused(lambda: client.randomkey())
    assert refused(lambda: client.dbsize())
    assert refused(lambda: client.execute_command("SELECT", "1"))  # another logical database
    assert refused(lambda: client.execute_command("MOVE", harness.prefixes["orders"] + "1", "1"))
    assert client.ping()
    assert client.get(harness.prefixes["orders"] + "1") == b"tea"
    harness.connector.revoke(unit)


def test_rules_from_the_config_cannot_open_what_is_always_denied(harness: RedisHarness) -> None:
    conn = connector(harness, rules={"read": ["+@all"], "write": ["+@all"]})
    unit, client = grant(conn, f"{NAME}/orders", "read")
    assert refused(lambda: client.scan(0))
    assert refused(lambda: client.execute_command("SELECT", "1"))
    conn.revoke(unit)
