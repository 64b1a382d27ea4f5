"""The LDAP groups connector beyond the conformance suite: members Sluice did not add stay, two grants
of one membership, the last member of a groupOfNames, finding users by search, DNs as data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import ldap3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from sluice.connectors import ldap_dn
from sluice.connectors.base import AccessUnit, ConnectorContext
from sluice.connectors.ldap_groups import LdapGroupsConfig, LdapGroupsConnector
from sluice.connectors.paths import segment_name
from sluice.domain.errors import TargetError
from tests.connectors.conformance.ldap import PLACEHOLDER, LdapHarness, add_person, ldap_harness
from tests.target_servers import Slapd

NAME = "conf-ldap"


@pytest.fixture(scope="module")
def harness(slapd: Slapd) -> Iterator[LdapHarness]:
    yield from ldap_harness(slapd)


def members(slapd: Slapd, group: str) -> set[str]:
    conn = slapd.admin()
    conn.search(group, "(objectClass=*)", ldap3.BASE, attributes=["member", "uniqueMember"])
    attrs = conn.entries[0].entry_attributes_as_dict
    conn.unbind()
    return {str(v).lower() for v in (attrs.get("member") or []) + (attrs.get("uniqueMember") or [])}


def unit_for(harness: LdapHarness, email: str = "ada@example.com", path: str | None = None) -> AccessUnit:
    grant_id = f"gr_{secrets.token_hex(6)}"
    return AccessUnit(
        grant_id,
        harness.connector.principal_for(grant_id, email),
        email,
        "group",
        path or harness.sample.path,
        "member",
    )


def test_a_member_sluice_did_not_add_stays_after_the_revoke(harness: LdapHarness, slapd: Slapd) -> None:
    group = f"cn=readers,{harness.groups}"
    person = add_person(slapd.admin(), slapd.base, "grace")
    conn = slapd.admin()
    conn.modify(group, {"member": [(ldap3.MODIFY_ADD, [person])]})  # put there by hand, long ago
    unit = unit_for(harness, "grace@example.com")
    harness.connector.grant(unit)
    harness.connector.revoke(unit)
    assert person.lower() in members(slapd, group)
    assert unit.principal not in {m.principal for m in harness.connector.list_managed()}
    conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [person])]})


def test_two_grants_of_one_membership_end_with_the_last_one(harness: LdapHarness, slapd: Slapd) -> None:
    group = f"cn=readers,{harness.groups}"
    first, second = unit_for(harness), unit_for(harness)
    harness.connector.grant(first)
    harness.connector.grant(second)
    harness.connector.revoke(first)
    assert first.principal.lower() in members(slapd, group)
    harness.connector.revoke(second)
    assert first.principal.lower() not in members(slapd, group)


def test_the_last_member_of_a_group_of_names(harness: LdapHarness, slapd: Slapd) -> None:
    group = f"cn=solo{secrets.token_hex(2)},{harness.groups}"
    conn = slapd.admin()
    conn.add(group, ["groupOfNames"], {"cn": group.split(",")[0][3:], "member": [PLACEHOLDER]})
    path = f"{NAME}/{group.split(',')[0]}"
    unit = unit_for(harness, path=path)
    harness.connector.grant(unit)
    conn.modify(group, {"member": [(ldap3.MODIFY_DELETE, [PLACEHOLDER])]})  # now the grantee is alone
    with pytest.raises(TargetError, match="empty_group_member") as caught:
        harness.connector.revoke(unit)
    assert caught.value.retryable is True  # fixable in the config; the revoke keeps being retried
    placeholder = f"cn=empty,{slapd.base}"
    config = harness.config.model_copy(update={"empty_group_member": placeholder})
    LdapGroupsConnector(NAME, config, ConnectorContext(installation="test-install")).revoke(unit)
    assert members(slapd, group) == {placeholder.lower()}


def test_users_can_be_found_by_search(harness: LdapHarness, slapd: Slapd) -> None:
    add_person(slapd.admin(), slapd.base, "hopper")
    config = LdapGroupsConfig.model_validate(
        {
            **harness.config.model_dump(exclude={"user_dn_template"}),
            "user_search": {"base_dn": f"ou=people,{slapd.base}", "filter": "(mail={email})"},
        }
    )
    by_search = LdapGroupsConnector(NAME, config, ConnectorContext(installation="test-install"))
    assert (
        by_search.principal_for("gr_1", "hopper@example.com").lower() == f"uid=hopper,ou=people,{slapd.base}"
    )
    for email in ("nobody@example.com", "*)(uid=*@example.com"):
        with pytest.raises(TargetError) as caught:
            by_search.principal_for("gr_1", email)
        assert caught.value.retryable is False


def test_list_managed_is_only_this_integrations_records(harness: LdapHarness) -> None:
    unit = unit_for(harness)
    harness.connector.grant(unit)
    assert any(m.grant_id == unit.grant_id for m in harness.connector.list_managed())
    other = LdapGroupsConnector("other-ldap", harness.config, ConnectorContext(installation="test-install"))
    assert all(m.grant_id != unit.grant_id for m in other.list_managed())
    harness.connector.revoke(unit)


def test_a_grant_on_a_missing_group_is_a_lasting_error(harness: LdapHarness) -> None:
    with pytest.raises(TargetError) as caught:
        harness.connector.grant(unit_for(harness, path=f"{NAME}/cn=no such group"))
    assert caught.value.retryable is False
    for path in ("other/cn=x", f"{NAME}/not-an-rdn"):
        with pytest.raises(TargetError):
            harness.connector.grant(unit_for(harness, path=path))


def test_config_needs_one_way_to_find_users_and_real_dns() -> None:
    base = {
        "bind_dn": "cn=admin,dc=example,dc=org",
        "groups_base_dn": "ou=groups,dc=x",
        "state_dn": "ou=s,dc=x",
    }
    with pytest.raises(ValidationError):
        LdapGroupsConfig.model_validate(base)
    with pytest.raises(ValidationError):
        LdapGroupsConfig.model_validate(
            {**base, "user_dn_template": "uid={local},dc=x", "user_search": {"base_dn": "dc=x"}}
        )
    for bad in (
        {"user_dn_template": "uid=ada,dc=x"},
        {"user_dn_template": "uid={local}", "url": "http://x"},
        {"user_dn_template": "uid={local}", "state_dn": "not a dn"},
        {"user_dn_template": "uid={local}", "bind_password": "pw"},
    ):
        with pytest.raises(ValidationError):
            LdapGroupsConfig.model_validate({**base, **bad})


@given(st.text(min_size=1, max_size=40).filter(lambda s: "\0" not in s))
def test_an_rdn_survives_the_trip_through_a_path(value: str) -> None:
    dn = ldap_dn.join([("cn", value), ("ou", "groups")])
    (first, _) = ldap_dn.rdns(dn)
    assert first == ("cn", value)
    assert ldap_dn.pair_of(segment_name(ldap_dn.segment(first))) == ("cn", value)


def test_server_escapes_and_ours_mean_the_same() -> None:
    assert ldap_dn.unescape(r"team \22a\22\3B b\2C c \C3\A9") == 'team "a"; b, c é'
    assert ldap_dn.same_dn(r"cn=team \"a\"\; b,dc=X", r"CN=team \22a\22\3B b,dc=x")


def test_a_legacy_record_is_listed_as_legacy_and_still_revoked(harness: LdapHarness, slapd: Slapd) -> None:
    """A bookkeeping record written before records named their installation."""
    unit = unit_for(harness)
    details = harness.connector.grant(unit)
    conn = slapd.admin()
    record_dn = f"cn={unit.grant_id},{harness.config.state_dn}"
    legacy = f"sluice grant {unit.grant_id} added yes attribute {details['attribute']} integration {NAME}"
    conn.modify(record_dn, {"description": [(ldap3.MODIFY_REPLACE, [legacy])]})
    conn.unbind()
    theirs = LdapGroupsConnector(NAME, harness.config, ConnectorContext(installation="staging-copy"))
    for connector in (harness.connector, theirs):
        found = [m for m in connector.list_managed() if m.grant_id == unit.grant_id]
        assert [m.legacy for m in found] == [True]
    harness.connector.revoke(unit)
    assert not harness.can_use(unit, details)
    assert unit.grant_id not in {m.grant_id for m in harness.connector.list_managed()}


def test_another_installations_record_is_not_listed_nor_revoked(harness: LdapHarness) -> None:
    unit = unit_for(harness)
    details = harness.connector.grant(unit)
    theirs = LdapGroupsConnector(NAME, harness.config, ConnectorContext(installation="staging-copy"))
    assert unit.grant_id not in {m.grant_id for m in theirs.list_managed()}
    theirs.revoke(unit)  # nothing of that installation's: nothing to take away
    assert harness.can_use(unit, details)
    harness.connector.revoke(unit)
    assert not harness.can_use(unit, details)
