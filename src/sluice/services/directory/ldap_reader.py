"""Reading people and groups from an LDAP server into a snapshot (no store here): paged searches, so a
directory of any size is read in pages of `page_size` entries, and errors in words with the password
scrubbed. Called outside any transaction: a slow directory holds no store lock."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as lx

from sluice.connectors import ldap_dn
from sluice.connectors.ldap_connection import bound_connection
from sluice.connectors.support import resolved_secrets, scrub
from sluice.domain.errors import InvalidInput
from sluice.domain.text import storable_text
from sluice.services.directory.ldap_config import LdapSourceConfig

DnKey = tuple[tuple[str, str], ...]


class DirectoryReadError(Exception):
    """The directory could not be read; nothing of the source is changed."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class LdapPerson:
    dn: str
    email: str | None
    name: str
    manager_dn: str | None
    attributes: dict[str, str]
    member_of: list[str]
    disabled: bool


@dataclass(frozen=True)
class LdapGroup:
    dn: str
    name: str
    members: list[str]


@dataclass(frozen=True)
class DirectorySnapshot:
    people: list[LdapPerson] = field(default_factory=list)
    groups: list[LdapGroup] = field(default_factory=list)
    groups_read: bool = False  # group entries were searched: memberOf names only those


def dn_key(value: str) -> DnKey | None:
    """A DN as compared (escaping undone, case folded); None for text that is not a DN."""
    try:
        return ldap_dn.canonical(value)
    except lx.LDAPInvalidDnError:
        return None


def _values(attributes: dict[str, Any], name: str | None) -> list[str]:
    if name is None:
        return []
    found = next((v for k, v in attributes.items() if k.lower() == name.lower()), None)
    if found is None:
        return []
    values = found if isinstance(found, list) else [found]
    texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values if v != ""]
    return [text for text in texts if _storable(text)]


def _storable(text: str) -> bool:
    """A value no store can hold (a NUL, a lone surrogate) is left out rather than failing the sync."""
    try:
        storable_text(text)
    except ValueError:
        return False
    return True


def _first(attributes: dict[str, Any], name: str | None) -> str | None:
    values = _values(attributes, name)
    return values[0].strip() if values else None


def read_directory(name: str, config: LdapSourceConfig) -> DirectorySnapshot:
    """Every person under `people_base_dn` matching `people_filter` and, with `groups_base_dn`, every
    group matching `group_filter`. Raises DirectoryReadError."""
    with _errors(name, config), _connection(name, config) as conn:
        disabled: set[DnKey] = set()
        if config.disabled_filter:
            query = f"(&{config.people_filter}{config.disabled_filter})"
            disabled = {
                k for e in _search(conn, config, config.people_base_dn, query, []) if (k := dn_key(e[0]))
            }
        wanted = [config.email_attribute, config.name_attribute, "cn"]
        wanted += [a for a in (config.manager_attribute, config.member_of_attribute) if a]
        wanted += list(config.attributes.values())
        people = [
            _person(entry_dn, attrs, config, dn_key(entry_dn) in disabled)
            for entry_dn, attrs in _search(conn, config, config.people_base_dn, config.people_filter, wanted)
        ]
        groups: list[LdapGroup] = []
        if config.groups_base_dn:
            wanted = [config.group_name_attribute, *config.group_member_attributes]
            for entry_dn, attrs in _search(conn, config, config.groups_base_dn, config.group_filter, wanted):
                group_name = _first(attrs, config.group_name_attribute)
                members = [m for a in config.group_member_attributes for m in _values(attrs, a)]
                if group_name:
                    groups.append(LdapGroup(entry_dn, group_name, members))
    return DirectorySnapshot(people=people, groups=groups, groups_read=bool(config.groups_base_dn))


def _person(entry_dn: str, attrs: dict[str, Any], config: LdapSourceConfig, disabled: bool) -> LdapPerson:
    mapped = {
        key: value[:500]
        for key, ldap_name in config.attributes.items()
        if (value := _first(attrs, ldap_name))
    }
    email = _first(attrs, config.email_attribute)
    return LdapPerson(
        dn=entry_dn,
        email=email.lower() if email else None,
        name=(_first(attrs, config.name_attribute) or _first(attrs, "cn") or "")[:200],
        manager_dn=_first(attrs, config.manager_attribute),
        attributes=mapped,
        member_of=_values(attrs, config.member_of_attribute),
        disabled=disabled,
    )


def _search(
    conn: ldap3.Connection, config: LdapSourceConfig, base: str, query: str, attributes: Iterable[str]
) -> list[tuple[str, dict[str, Any]]]:
    entries = conn.extend.standard.paged_search(
        base,
        query,
        ldap3.SUBTREE,
        attributes=list(dict.fromkeys(attributes)) or ldap3.NO_ATTRIBUTES,
        paged_size=config.page_size,
        generator=False,
    )
    return [(e["dn"], dict(e.get("attributes") or {})) for e in entries if e.get("type") == "searchResEntry"]


def _connection(name: str, config: LdapSourceConfig) -> Any:
    return bound_connection(
        url=config.url,
        bind_dn=config.bind_dn,
        bind_password=config.bind_password,
        start_tls=config.uses_start_tls,
        ca_file=config.ca_file,
        connect_timeout_seconds=config.connect_timeout_seconds,
        timeout_seconds=config.timeout_seconds,
        what=f"directory source {name}",
    )


@contextmanager
def _errors(name: str, config: LdapSourceConfig) -> Iterator[None]:
    try:
        yield
    except (lx.LDAPException, OSError, InvalidInput) as exc:
        detail = exc.detail if isinstance(exc, InvalidInput) else str(exc).strip() or type(exc).__name__
        if isinstance(exc, lx.LDAPNoSuchObjectResult):
            detail = f"a base DN does not exist ({detail})"
        secrets = resolved_secrets([config.bind_password])
        raise DirectoryReadError(f"directory source {name}: {scrub(detail, secrets)}") from None
