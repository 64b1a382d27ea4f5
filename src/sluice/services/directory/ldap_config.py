"""The `directory_sources:` section of the config file: directories Sluice reads on its own.

```yaml
directory_sources:
  - name: corp                      # its rows carry the source ldap:corp
    sync_interval: 15m
    ldap:
      url: ldaps://ldap.example.com
      bind_dn: cn=sluice,ou=services,dc=example,dc=com
      bind_password: {env: SLUICE_LDAP_PASSWORD}     # or {file: /run/secrets/ldap}
      people_base_dn: ou=people,dc=example,dc=com
      attributes: {department: departmentNumber}    # identity attribute: LDAP attribute
      groups_base_dn: ou=groups,dc=example,dc=com
```

Everything is checked when the file is read: URLs, DNs, filters (parsed as LDAP filters), attribute
names, and that the password is named (env or file), never written."""

from __future__ import annotations

import re
from typing import Any

from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.operation.search import parse_filter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.connectors import ldap_dn
from sluice.connectors.base import SecretRef
from sluice.connectors.ldap_connection import wants_start_tls
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.text import Token
from sluice.services.directory.changes import MAX_ATTRIBUTES, RESERVED_ATTRIBUTES
from sluice.services.directory.sources import LDAP_PREFIX

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,33}$")
_LDAP_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,99}$|^[0-9]+(\.[0-9]+)+$")
_IDENTITY_ATTRIBUTE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
MIN_INTERVAL_SECONDS = 60


def _dn(value: str, field: str) -> str:
    try:
        ldap_dn.rdns(value)
    except LDAPInvalidDnError as exc:
        raise ValueError(f"{field} {value!r} is not a DN: {exc}") from None
    return value


def _filter(value: str, field: str) -> str:
    try:
        parse_filter(value, None, True, False, None, False)
    except LDAPException:
        raise ValueError(f"{field} {value!r} is not an LDAP filter, e.g. (objectClass=person)") from None
    return value


def _ldap_attribute(value: str) -> str:
    if not _LDAP_ATTRIBUTE.match(value):
        raise ValueError(f"{value!r} is not an LDAP attribute name (letters, digits and '-', or an OID)")
    return value


class LdapSourceConfig(BaseModel):
    """How to read people and groups from one LDAP server (OpenLDAP, 389-DS, Active Directory)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    bind_dn: str
    bind_password: SecretRef
    start_tls: bool | None = None  # StartTLS on ldap://; default: on toward any host but this machine
    ca_file: str | None = None  # PEM bundle to check the server's certificate (ldaps:// or StartTLS)
    people_base_dn: str
    people_filter: str = "(|(objectClass=inetOrgPerson)(objectClass=user))"
    disabled_filter: str | None = None  # people matching it are inactive, e.g. (nsAccountLock=TRUE)
    email_attribute: str = "mail"
    name_attribute: str = "displayName"  # `cn` when the entry has no displayName
    manager_attribute: str | None = "manager"  # holds the manager's DN
    member_of_attribute: str | None = None  # e.g. memberOf: groups read from the person's entry
    attributes: dict[Token, str] = Field(default_factory=dict, max_length=MAX_ATTRIBUTES)
    groups_base_dn: str | None = None
    group_filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=group))"
    group_name_attribute: str = "cn"
    group_member_attributes: list[str] = Field(default_factory=lambda: ["member", "uniqueMember"])
    page_size: int = Field(default=500, ge=1, le=5000)
    connect_timeout_seconds: float = Field(default=5, gt=0, le=120)
    timeout_seconds: float = Field(default=30, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, value: str) -> str:
        if not re.match(r"^ldaps?://[^/\s]+/?$", value):
            raise ValueError("url is ldap://host[:port] or ldaps://host[:port]")
        return value

    @field_validator("bind_password", mode="before")
    @classmethod
    def _named_secret(cls, value: Any) -> Any:
        if isinstance(value, dict):
            value = {key: item for key, item in value.items() if item is not None}
        named = isinstance(value, dict) and set(value) in ({"env"}, {"file"}) and all(value.values())
        if not named:
            raise ValueError(
                "bind_password names where the password lives, {env: VARIABLE} or {file: PATH}; "
                "never the password itself"
            )
        return value

    @field_validator(
        "email_attribute",
        "name_attribute",
        "manager_attribute",
        "member_of_attribute",
        "group_name_attribute",
    )
    @classmethod
    def _attribute_name(cls, value: str | None) -> str | None:
        return None if value is None else _ldap_attribute(value)

    @field_validator("group_member_attributes")
    @classmethod
    def _member_attributes(cls, value: list[str]) -> list[str]:
        return [_ldap_attribute(v) for v in value]

    @field_validator("attributes")
    @classmethod
    def _attribute_map(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ldap_name in value.items():
            if not _IDENTITY_ATTRIBUTE.match(name) or name in RESERVED_ATTRIBUTES:
                raise ValueError(
                    f"attribute name {name!r} must start with a letter, hold letters, digits and '_.-', "
                    f"and not be one of {', '.join(sorted(RESERVED_ATTRIBUTES))}"
                )
            _ldap_attribute(ldap_name)
        return value

    @model_validator(mode="after")
    def _dns_and_filters(self) -> LdapSourceConfig:
        for field in ("bind_dn", "people_base_dn", "groups_base_dn"):
            if getattr(self, field) is not None:
                _dn(getattr(self, field), field)
        for field in ("people_filter", "disabled_filter", "group_filter"):
            if getattr(self, field) is not None:
                _filter(getattr(self, field), field)
        if self.start_tls is True and self.url.startswith("ldaps://"):
            raise ValueError("start_tls is for ldap:// URLs; ldaps:// is TLS from the start")
        return self

    @property
    def uses_start_tls(self) -> bool:
        return wants_start_tls(self.url, self.start_tls)


class DirectorySourceSpec(BaseModel):
    """One item of `directory_sources:`. Only `ldap` sources exist today."""

    model_config = ConfigDict(extra="forbid")

    name: Token
    sync_interval: Token = "15m"
    ldap: LdapSourceConfig

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _SOURCE_NAME.match(value):
            raise ValueError(
                f"directory source name {value!r} must be 1 to 34 lower-case letters, digits, '-' or '_' "
                "(its people carry the source ldap:<name>)"
            )
        return value

    @field_validator("sync_interval", mode="before")
    @classmethod
    def _valid_interval(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("sync_interval is a duration like '15m' or '1h'")
        try:
            seconds = parse_duration(value).total_seconds()
        except InvalidInput as exc:
            raise ValueError(exc.detail) from exc
        if seconds < MIN_INTERVAL_SECONDS:
            raise ValueError("sync_interval is at least 1m; `sluice directory sync` syncs at once")
        return str(value)

    @property
    def source(self) -> str:
        return LDAP_PREFIX + self.name

    @property
    def sync_interval_seconds(self) -> int:
        return int(parse_duration(self.sync_interval).total_seconds())
