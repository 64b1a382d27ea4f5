"""One harness per connector, each on its real server; the conformance tests run over all of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sluice.connectors.conformance import ConnectorHarness
from tests.connectors.conformance.aws import AwsHarness
from tests.connectors.conformance.http import HttpHarness
from tests.connectors.conformance.ldap import ldap_harness
from tests.connectors.conformance.mysql import mysql_harness
from tests.connectors.conformance.pg import postgres_harness
from tests.connectors.conformance.redis import redis_harness
from tests.connectors.conformance.ssh import SshHarness

KINDS = ("postgresql", "mysql", "redis", "ldap_groups", "http", "ssh", "aws")


@pytest.fixture(scope="module")
def postgresql_harness(postgres_admin_url: str) -> Iterator[ConnectorHarness]:
    yield from postgres_harness(postgres_admin_url)


@pytest.fixture(scope="module")
def mysql_harness_fixture(mysql_server: dict[str, Any]) -> Iterator[ConnectorHarness]:
    yield from mysql_harness(mysql_server)


@pytest.fixture(scope="module")
def redis_harness_fixture(redis_server: dict[str, Any]) -> Iterator[ConnectorHarness]:
    yield from redis_harness(redis_server)


@pytest.fixture(scope="module")
def ldap_groups_harness(slapd: Any) -> Iterator[ConnectorHarness]:
    yield from ldap_harness(slapd)


@pytest.fixture(scope="module")
def http_harness(http_endpoint: Any) -> ConnectorHarness:
    return HttpHarness(http_endpoint)


@pytest.fixture(scope="module")
def ssh_harness(sshd: Any) -> ConnectorHarness:
    return SshHarness(sshd)


@pytest.fixture(scope="module")
def aws_harness(aws_org: Any) -> ConnectorHarness:
    return AwsHarness(aws_org)


_FIXTURES = {
    "postgresql": "postgresql_harness",
    "mysql": "mysql_harness_fixture",
    "redis": "redis_harness_fixture",
    "ldap_groups": "ldap_groups_harness",
    "http": "http_harness",
    "ssh": "ssh_harness",
    "aws": "aws_harness",
}


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest) -> ConnectorHarness:
    found: ConnectorHarness = request.getfixturevalue(_FIXTURES[request.param])
    return found
