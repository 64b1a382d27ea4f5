"""LDAP groups connector: temporary membership of groups in a directory (OpenLDAP, 389-DS and the like).

Resources are the groups under `groups_base_dn` that match `group_filter`; a group's path is its DN
below the base, one unescaped RDN per segment (`{integration}/ou=team/cn=admins`), and the containers
between the base and a group are `ou` resources, so groups keep their place. Tags come from a
`sluice: k=v` line in a group's description.

A grant adds the grantee's DN (from `user_dn_template` or `user_search`) to the group's `member` (a
`groupOfNames`) or `uniqueMember` (a `groupOfUniqueNames`). A member value carries no marker, so Sluice
keeps one small bookkeeping entry per grant under `state_dn` (an `organizationalRole`: roleOccupant =
member, seeAlso = group, description = grant, installation, integration, and whether Sluice added
the value), written before the group is touched. A grantee who was already a member, with no grant of
Sluice behind it, is recorded as "added no", and revoking that grant leaves them be: Sluice only takes
away values it added, and only when no other grant still needs the same membership (a record of any
integration or installation of Sluice counts). `list_managed` lists this installation's bookkeeping
entries (and legacy ones, written before records named their installation); a member value added by
hand is never Sluice's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, ClassVar

import ldap3
from ldap3.core import exceptions as lx
from ldap3.utils.conv import escape_filter_chars
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.connectors import ldap_dn as dn
from sluice.connectors.base import (
    AccessUnit,
    ConnectorContext,
    DiscoveredResource,
    ManagedPrincipal,
    SecretRef,
)
from sluice.connectors.ldap_connection import bound_connection, ldap_host, wants_start_tls
from sluice.connectors.ldap_dn import Record
from sluice.connectors.paths import parse_tags, split_path
from sluice.connectors.support import is_loopback, plaintext_warning, resolved_secrets, scrub
from sluice.domain.errors import InvalidInput, TargetError

_RETRYABLE_RESULTS = (
    lx.LDAPBusyResult,
    lx.LDAPUnavailableResult,
    lx.LDAPTimeLimitExceededResult,
    lx.LDAPInvalidCredentialsResult,  # the admin password is wrong: fixable, and a revoke must go on
)
_RECORD_ATTRIBUTES = ["roleOccupant", "seeAlso", "description"]


class UserSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_dn: str
    filter: str = "(mail={email})"  # {email} and {local} are filter-escaped before they go in


class LdapGroupsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "ldap://127.0.0.1:389"
    bind_dn: str
    bind_password: SecretRef | None = None
    # StartTLS on an ldap:// URL. Default: on toward any host but this machine (ldaps:// is TLS
    # already); false sends the bind password in clear, and `check` says so.
    start_tls: bool | None = None
    ca_file: str | None = None
    groups_base_dn: str
    group_filter: str = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
    user_dn_template: str | None = None  # e.g. uid={local},ou=people,dc=example,dc=org
    user_search: UserSearch | None = None
    state_dn: str  # where the bookkeeping entries live, e.g. ou=sluice,dc=example,dc=org
    empty_group_member: str | None = None  # put in a groupOfNames whose last member Sluice removes
    page_size: int = Field(default=500, ge=1, le=5000)
    connect_timeout_seconds: float = Field(default=5, gt=0)
    timeout_seconds: float = Field(default=10, gt=0)

    @field_validator("url")
    @classmethod
    def _ldap_url(cls, value: str) -> str:
        if not re.match(r"^ldaps?://[^/\s]+/?$", value):
            raise ValueError("url is ldap://host[:port] or ldaps://host[:port]")
        return value

    @model_validator(mode="after")
    def _one_way_to_users(self) -> LdapGroupsConfig:
        if (self.user_dn_template is None) == (self.user_search is None):
            raise ValueError("give exactly one of user_dn_template and user_search")
        template = self.user_dn_template
        if template is not None and "{local}" not in template and "{email}" not in template:
            raise ValueError("user_dn_template needs {local} or {email}")
        for field in ("groups_base_dn", "state_dn", "bind_dn"):
            try:
                dn.rdns(getattr(self, field))
            except lx.LDAPInvalidDnError as exc:
                raise ValueError(f"{field} is not a DN: {exc}") from None
        return self


class LdapGroupsConnector:
    kind: ClassVar[str] = "ldap_groups"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"group": ("member",), "ou": ()}
    issues_secret: ClassVar[bool] = False
    config_model: ClassVar[type[BaseModel]] = LdapGroupsConfig

    def __init__(self, integration_name: str, config: BaseModel, context: ConnectorContext) -> None:
        if not isinstance(config, LdapGroupsConfig):
            raise TypeError("LdapGroupsConnector takes a LdapGroupsConfig")
        self.name = integration_name
        self.config = config
        self.context = context
        self._base = dn.rdns(config.groups_base_dn)

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        """The grantee's DN. With `user_search` this reads the directory (it writes nothing)."""
        local = grantee_email.rpartition("@")[0] or grantee_email
        if self.config.user_dn_template is not None:
            return self.config.user_dn_template.format(
                local=dn.escape_value(local), email=dn.escape_value(grantee_email)
            )
        search = self.config.user_search
        if search is None:
            raise TargetError(f"{self.name}: no way to find a user's DN is configured", retryable=False)
        query = search.filter.format(
            local=escape_filter_chars(local), email=escape_filter_chars(grantee_email)
        )
        with self._errors(), self._connection() as conn:
            conn.search(search.base_dn, query, ldap3.SUBTREE, attributes=[], size_limit=2)
            found = [str(e.entry_dn) for e in conn.entries]
        if len(found) != 1:
            raise TargetError(f"{self.name}: {len(found)} entries match {grantee_email}", retryable=False)
        return found[0]

    def discover(self) -> list[DiscoveredResource]:
        with self._errors(), self._connection() as conn:
            entries = conn.extend.standard.paged_search(
                self.config.groups_base_dn,
                self.config.group_filter,
                ldap3.SUBTREE,
                attributes=["cn", "description"],
                paged_size=self.config.page_size,
                generator=False,
            )
        found: dict[str, DiscoveredResource] = {}
        for entry in entries:
            below = self._below_base(entry.get("dn", "")) if entry.get("type") == "searchResEntry" else None
            if not below:
                continue  # the base itself, a referral, or a DN with a multi-valued RDN
            parent = None
            for depth in range(1, len(below)):  # the containers between the base and the group
                path = self._path(below[:depth])
                found.setdefault(path, DiscoveredResource("ou", below[depth - 1][1], path, parent))
                parent = path
            attrs = entry["attributes"]
            names = attrs.get("cn") or [below[-1][1]]
            description = "\n".join(str(d) for d in attrs.get("description") or [])
            path = self._path(below)
            found[path] = DiscoveredResource("group", str(names[0]), path, parent, parse_tags(description))
        return sorted(found.values(), key=lambda r: r.path)

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        group, member = self._group_dn(unit), self._member(unit)
        with self._errors(), self._connection() as conn:
            attribute = self._member_attribute(conn, group)
            record = self._record(conn, unit.grant_id)
            if record is None:
                self._ensure_state_container(conn)
                held_by_sluice = any(r.added for r in self._records_for(conn, group, member))
                added = held_by_sluice or not self._is_member(conn, group, attribute, member)
                record = self._write_record(conn, unit.grant_id, member, group, attribute, added)
            elif not (dn.same_dn(record.member, member) and dn.same_dn(record.group, group)):
                raise TargetError(
                    f"{self.name}: grant {unit.grant_id} is recorded for another member or group",
                    retryable=False,
                )
            if record.added:
                with suppress(lx.LDAPAttributeOrValueExistsResult):  # granting twice is one grant
                    conn.modify(group, {attribute: [(ldap3.MODIFY_ADD, [member])]})
        return {"url": self.config.url, "group": group, "member": member, "attribute": attribute}

    def revoke(self, unit: AccessUnit) -> None:
        if unit.resource_path:
            self._group_dn(unit)
        with self._errors(), self._connection() as conn:
            record = self._record(conn, unit.grant_id)
            if record is None:
                return  # Sluice holds nothing for this grant: nothing of ours to take away
            if record.added:
                others = self._records_for(conn, record.group, record.member)
                if not any(r.added and r.grant_id != record.grant_id for r in others):
                    self._remove_member(conn, record)
            with suppress(lx.LDAPNoSuchObjectResult):
                conn.delete(record.dn)

    def list_managed(self) -> list[ManagedPrincipal]:
        with self._errors(), self._connection() as conn:
            records = self._records(conn, "(objectClass=organizationalRole)", self.name)
        return [
            ManagedPrincipal(principal=r.member, grant_id=r.grant_id, legacy=r.installation is None)
            for r in records
            if self._ours(r)
        ]

    def check(self) -> list[str]:
        problems = self._plaintext_problems()
        parent = ",".join(self.config.state_dn.split(",")[1:])
        try:
            with self._errors(), self._connection() as conn:
                if not self._exists(conn, self.config.groups_base_dn):
                    problems.append(f"groups_base_dn {self.config.groups_base_dn} does not exist")
                if not self._exists(conn, self.config.state_dn) and not self._exists(conn, parent):
                    problems.append(f"neither state_dn {self.config.state_dn} nor its parent exists")
        except TargetError as exc:
            return [*self._plaintext_problems(), f"cannot connect: {exc.detail}"]
        return problems

    @property
    def _host(self) -> str:
        return ldap_host(self.config.url)

    @property
    def _start_tls(self) -> bool:
        return wants_start_tls(self.config.url, self.config.start_tls)

    def _plaintext_problems(self) -> list[str]:
        if self.config.url.startswith("ldaps://") or self._start_tls or is_loopback(self._host):
            return []
        return [plaintext_warning(self._host, "ldap:// with start_tls: false")]

    # --- bookkeeping entries

    def _record_dn(self, grant_id: str) -> str:
        return f"cn={dn.escape_value(grant_id)},{self.config.state_dn}"

    def _record(self, conn: ldap3.Connection, grant_id: str) -> Record | None:
        if not grant_id:
            return None
        try:
            conn.search(
                self._record_dn(grant_id),
                "(objectClass=organizationalRole)",
                ldap3.BASE,
                attributes=_RECORD_ATTRIBUTES,
            )
        except lx.LDAPNoSuchObjectResult:
            return None
        records = [r for r in self._parsed(conn, self.name) if self._ours(r)]
        return records[0] if records else None

    def _ours(self, record: Record) -> bool:
        """Written by this installation, or by one before records named their installation."""
        return record.installation in (self.context.installation, None)

    def _records_for(self, conn: ldap3.Connection, group: str, member: str) -> list[Record]:
        """Every record of Sluice about this membership, whichever integration or installation wrote
        it: a value another grant still needs is never taken away."""
        query = (
            f"(&(objectClass=organizationalRole)(seeAlso={escape_filter_chars(group)})"
            f"(roleOccupant={escape_filter_chars(member)}))"
        )
        return self._records(conn, query, None)

    def _records(self, conn: ldap3.Connection, query: str, integration: str | None) -> list[Record]:
        try:
            conn.search(self.config.state_dn, query, ldap3.LEVEL, attributes=_RECORD_ATTRIBUTES)
        except lx.LDAPNoSuchObjectResult:
            return []
        return self._parsed(conn, integration)

    def _parsed(self, conn: ldap3.Connection, integration: str | None) -> list[Record]:
        found = [dn.parse_record(e.entry_dn, e.entry_attributes_as_dict, integration) for e in conn.entries]
        return [r for r in found if r is not None]

    def _write_record(
        self, conn: ldap3.Connection, grant_id: str, member: str, group: str, attribute: str, added: bool
    ) -> Record:
        record_dn = self._record_dn(grant_id)
        attributes = {
            "cn": grant_id,
            "roleOccupant": member,
            "seeAlso": group,
            "description": dn.record_description(
                grant_id, added, attribute, self.name, self.context.installation
            ),
        }
        try:
            conn.add(record_dn, ["organizationalRole"], attributes)
        except lx.LDAPEntryAlreadyExistsResult:
            existing = self._record(conn, grant_id)  # another worker wrote it just now
            if existing is None:
                raise TargetError(
                    f"{self.name}: {record_dn} exists and is not ours", retryable=False
                ) from None
            return existing
        return Record(record_dn, grant_id, member, group, attribute, added, self.context.installation)

    def _ensure_state_container(self, conn: ldap3.Connection) -> None:
        kind, value = dn.rdns(self.config.state_dn)[0]
        if kind.lower() == "ou" and not self._exists(conn, self.config.state_dn):
            with suppress(lx.LDAPEntryAlreadyExistsResult):
                conn.add(self.config.state_dn, ["organizationalUnit"], {"ou": value})

    # --- group steps

    def _exists(self, conn: ldap3.Connection, entry: str) -> bool:
        try:
            conn.search(entry, "(objectClass=*)", ldap3.BASE, attributes=[])
        except lx.LDAPNoSuchObjectResult:
            return False
        return bool(conn.entries)

    def _member_attribute(self, conn: ldap3.Connection, group: str) -> str:
        try:
            conn.search(group, "(objectClass=*)", ldap3.BASE, attributes=["objectClass"])
        except lx.LDAPNoSuchObjectResult:
            raise TargetError(f"{self.name}: no group {group}", retryable=False) from None
        classes = {str(c).lower() for c in conn.entries[0].entry_attributes_as_dict.get("objectClass", [])}
        return "uniqueMember" if "groupofuniquenames" in classes else "member"

    def _is_member(self, conn: ldap3.Connection, group: str, attribute: str, member: str) -> bool:
        conn.search(group, f"({attribute}={escape_filter_chars(member)})", ldap3.BASE, attributes=[])
        return bool(conn.entries)

    def _remove_member(self, conn: ldap3.Connection, record: Record) -> None:
        try:
            conn.modify(record.group, {record.attribute: [(ldap3.MODIFY_DELETE, [record.member])]})
        except (lx.LDAPNoSuchAttributeResult, lx.LDAPNoSuchObjectResult):
            return  # removed by hand, or the group is gone: the access is gone either way
        except lx.LDAPObjectClassViolationResult:
            placeholder = self.config.empty_group_member
            if placeholder is None:
                raise TargetError(
                    f"{self.name}: {record.member} is the last member of {record.group}, which cannot be "
                    "empty; set empty_group_member so Sluice can put a placeholder in its place"
                ) from None
            change = [(ldap3.MODIFY_ADD, [placeholder]), (ldap3.MODIFY_DELETE, [record.member])]
            conn.modify(record.group, {record.attribute: change})

    # --- helpers

    def _below_base(self, entry_dn: str) -> list[tuple[str, str]]:
        try:
            pairs = dn.rdns(entry_dn)
        except lx.LDAPInvalidDnError:
            return []
        n = len(self._base)
        folded = [(a.lower(), v.lower()) for a, v in pairs[-n:]]
        if len(pairs) <= n or folded != [(a.lower(), v.lower()) for a, v in self._base]:
            return []
        return list(reversed(pairs[:-n]))

    def _path(self, below: list[tuple[str, str]]) -> str:
        return "/".join([self.name, *(dn.segment(p) for p in below)])

    def _group_dn(self, unit: AccessUnit) -> str:
        names = split_path(self.name, unit.resource_path)
        if names is None or unit.resource_type != "group" or unit.permission != "member":
            raise TargetError(
                f"{unit.permission!r} on {unit.resource_path!r} is not something {self.name} grants",
                retryable=False,
            )
        try:
            pairs = [dn.pair_of(name) for name in reversed(names)]
        except lx.LDAPInvalidDnError:
            raise TargetError(
                f"{unit.resource_path!r} is not a group path of {self.name}", retryable=False
            ) from None
        return dn.join(pairs) + "," + self.config.groups_base_dn

    def _member(self, unit: AccessUnit) -> str:
        try:
            dn.rdns(unit.principal)
        except lx.LDAPInvalidDnError:
            raise TargetError(f"{unit.principal!r} is not a DN", retryable=False) from None
        return unit.principal

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except TargetError:
            raise
        except (lx.LDAPException, OSError, InvalidInput) as exc:
            detail = exc.detail if isinstance(exc, InvalidInput) else str(exc).strip() or type(exc).__name__
            retryable = not isinstance(exc, lx.LDAPOperationResult) or isinstance(exc, _RETRYABLE_RESULTS)
            secrets = resolved_secrets([self.config.bind_password])
            raise TargetError(f"{self.name}: {scrub(detail, secrets)}", retryable=retryable) from None

    def _connection(self) -> AbstractContextManager[ldap3.Connection]:
        return bound_connection(
            url=self.config.url,
            bind_dn=self.config.bind_dn,
            bind_password=self.config.bind_password,
            start_tls=self._start_tls,
            ca_file=self.config.ca_file,
            connect_timeout_seconds=self.config.connect_timeout_seconds,
            timeout_seconds=self.config.timeout_seconds,
            what=self.name,
        )
