"""Pure helpers of the LDAP groups connector: distinguished names as data, and the bookkeeping record.

A DN travels in three forms: as the server writes it (its own escaping, `\\22` or `\\"`), as Sluice
writes it (`escape_rdn` from ldap3), and inside a resource path. Paths hold each RDN unescaped
(`ou=team "a"; b`), so the same group has the same path whatever escaping the server chose; turning a
path back into a DN escapes every value again. Comparisons go through `canonical`, which undoes the
escaping and folds case (DN matching in LDAP ignores case for the usual naming attributes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import hexdigits

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from sluice.connectors.paths import path_segment

_SPECIAL = set(',+"\\<>;=#')
RECORD = re.compile(
    r"^sluice grant (?P<grant>\S+) added (?P<added>yes|no) attribute (?P<attr>member|uniqueMember)"
    r"(?: installation (?P<installation>\S+))? integration (?P<integration>.+)$"
)


def unescape(value: str) -> str:
    """An attribute value as held, from its RFC 4514 form (`\\,` and `\\2C` both mean `,`)."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in hexdigits for c in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out += value[i + 1].encode()
            i += 2
            continue
        out += value[i].encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def rdns(dn: str) -> list[tuple[str, str]]:
    """(attribute, unescaped value) per RDN, leaf first. A multi-valued RDN (`cn=a+ou=b`) is refused:
    its parts could not be told apart once unescaped."""
    parts = parse_dn(dn)
    if any(sep == "+" for _, _, sep in parts):
        raise LDAPInvalidDnError("multi-valued RDNs are not supported")
    return [(attr, unescape(value)) for attr, value, _ in parts]


def escape_value(value: str) -> str:
    """An attribute value for a DN (RFC 4514): every special character escaped wherever it stands
    (ldap3's own DN parser wants `#` escaped even inside a value), NUL as `\\00`, and a leading or
    trailing space escaped."""
    parts = ["\\00" if c == "\0" else "\\" + c if c in _SPECIAL else c for c in value]
    for edge in {0, len(parts) - 1} if parts else set():
        if parts[edge] == " ":
            parts[edge] = "\\ "
    return "".join(parts)


def join(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{attr}={escape_value(value)}" for attr, value in pairs)


def canonical(dn: str) -> tuple[tuple[str, str], ...]:
    return tuple((a.lower(), v.lower()) for a, v in rdns(dn))


def same_dn(a: str, b: str) -> bool:
    try:
        return canonical(a) == canonical(b)
    except LDAPInvalidDnError:
        return False


def segment(pair: tuple[str, str]) -> str:
    """One RDN as a path segment: `attr=value` unescaped, with `/` and `%` percent-escaped."""
    return path_segment(f"{pair[0]}={pair[1]}")


def pair_of(name: str) -> tuple[str, str]:
    """The inverse of `segment` (after `segment_name`): `ou=team "a"; b` -> ("ou", 'team "a"; b')."""
    attr, sep, value = name.partition("=")
    if not sep or not value or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+", attr):
        raise LDAPInvalidDnError(f"{name!r} is not attribute=value")
    return attr, value


@dataclass(frozen=True)
class Record:
    """One grant's bookkeeping entry: which member it is about, in which group, and whether Sluice
    added that member value (or found it there)."""

    dn: str
    grant_id: str
    member: str
    group: str
    attribute: str
    added: bool
    installation: str | None = None  # None: written before records named their installation


def record_description(
    grant_id: str, added: bool, attribute: str, integration: str, installation: str
) -> str:
    said = "yes" if added else "no"
    return (
        f"sluice grant {grant_id} added {said} attribute {attribute}"
        f" installation {installation} integration {integration}"
    )


def parse_record(dn: str, attrs: dict[str, list[object]], integration: str | None) -> Record | None:
    """The bookkeeping record an entry holds, when it is one of `integration` (of any, when None)."""
    occupant, group = attrs.get("roleOccupant") or [], attrs.get("seeAlso") or []
    for description in attrs.get("description") or []:
        match = RECORD.match(str(description))
        if match and integration in (None, match["integration"]) and occupant and group:
            return Record(
                dn=dn,
                grant_id=match["grant"],
                member=str(occupant[0]),
                group=str(group[0]),
                attribute=match["attr"],
                added=match["added"] == "yes",
                installation=match["installation"],
            )
    return None
