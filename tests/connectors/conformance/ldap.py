"""The LDAP groups connector's conformance harness: groups and people of its own in the test slapd."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import ldap3
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext, SecretRef
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.ldap_dn import escape_value
from sluice.connectors.ldap_groups import LdapGroupsConfig, LdapGroupsConnector
from sluice.connectors.paths import path_segment
from tests.target_servers import Slapd

NAME = "conf-ldap"
PLACEHOLDER = "cn=nobody,dc=example,dc=org"
USER_PASSWORD = "user-password"


class LdapHarness(ConnectorHarness):
    has_sessions = False  # a directory keeps no session that membership would end

    def __init__(self, slapd: Slapd, tag: str) -> None:
        self.slapd = slapd
        self.groups = f"ou=g{tag},ou=groups,{slapd.base}"
        self.team = f'team "{tag}"; x, y'
        self.hostile_group = f'o\'brien "ops"; {tag}, +z'
        self.hostile_email = f'o\'brien; "x", y+{tag}@example.com'
        self.config = LdapGroupsConfig(
            url=slapd.url,
            bind_dn=slapd.admin_dn,
            bind_password=SecretRef(file=slapd.password_file),
            groups_base_dn=self.groups,
            user_dn_template=f"uid={{local}},ou=people,{slapd.base}",
            state_dn=f"ou=sluice-{tag},{slapd.base}",
        )
        self.connector = LdapGroupsConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("group", f"{NAME}/cn=readers", "member")
        hostile_path = f"{NAME}/{path_segment('ou=' + self.team)}/{path_segment('cn=' + self.hostile_group)}"
        self.hostile = Sample("group", hostile_path, "member")
        self.tagged = (f"{NAME}/cn=readers", {"pii": "true"})

    def group_dn(self, path: str) -> str:
        if path == self.sample.path:
            return f"cn=readers,{self.groups}"
        return f"cn={escape_value(self.hostile_group)},ou={escape_value(self.team)},{self.groups}"

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        """The grantee binds as themselves and searches the group for their own DN."""
        server = ldap3.Server(self.slapd.url, get_info=ldap3.NONE, connect_timeout=5)
        try:
            conn = ldap3.Connection(server, unit.principal, USER_PASSWORD, auto_bind=True, receive_timeout=5)
        except lx.LDAPException:
            return False
        try:
            dn = escape_filter_chars(unit.principal)
            conn.search(self.group_dn(unit.resource_path), f"(|(member={dn})(uniqueMember={dn}))", ldap3.BASE)
            return bool(conn.entries)
        finally:
            conn.unbind()

    def remove_by_hand(self, unit: AccessUnit) -> None:
        conn = self.slapd.admin()
        group = self.group_dn(unit.resource_path)
        conn.search(group, "(objectClass=*)", ldap3.BASE, attributes=["objectClass"])
        attribute = "uniqueMember" if "groupOfUniqueNames" in conn.entries[0].objectClass.values else "member"
        conn.modify(group, {attribute: [(ldap3.MODIFY_DELETE, [unit.principal])]})
        conn.unbind()

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        config = self.config.model_copy(
            update={
                "url": f"ldap://127.0.0.1:{port}",
                "connect_timeout_seconds": timeout_seconds,
                "timeout_seconds": timeout_seconds,
            }
        )
        return LdapGroupsConnector(NAME, config, ConnectorContext(installation="test-install"))


def add_person(conn: ldap3.Connection, base: str, local: str) -> str:
    dn = f"uid={escape_value(local)},ou=people,{base}"
    attributes = {
        "uid": local,
        "cn": local,
        "sn": "Test",
        "mail": f"{local}@example.com",
        "userPassword": USER_PASSWORD,
    }
    with contextlib.suppress(lx.LDAPEntryAlreadyExistsResult):
        conn.add(dn, ["inetOrgPerson"], attributes)
    return dn


def ldap_harness(slapd: Slapd) -> Iterator[LdapHarness]:
    harness = LdapHarness(slapd, secrets.token_hex(3))
    conn = slapd.admin()
    add_person(conn, slapd.base, "ada")
    add_person(conn, slapd.base, (harness.hostile_email or "").rpartition("@")[0])
    conn.add(harness.groups, ["organizationalUnit"], {"ou": harness.groups.split(",")[0][3:]})
    conn.add(
        f"cn=readers,{harness.groups}",
        ["groupOfNames"],
        {"cn": "readers", "member": [PLACEHOLDER], "description": "Readers.\nsluice: pii=true"},
    )
    team = f"ou={escape_value(harness.team)},{harness.groups}"
    conn.add(team, ["organizationalUnit"], {"ou": harness.team})
    conn.add(
        f"cn={escape_value(harness.hostile_group)},{team}",
        ["groupOfUniqueNames"],
        {"cn": harness.hostile_group, "uniqueMember": [PLACEHOLDER]},
    )
    conn.unbind()
    yield harness
