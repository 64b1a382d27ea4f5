"""Who owns a directory row. Identities, groups and memberships carry their source: `config`, `api`,
`oidc`, `scim:<name>` (pushed by an identity provider) or `ldap:<name>` (read from a directory). Rows
of the last two change only through their source: the config file and the directory API refuse them.
(This module imports no SCIM or LDAP library: what only asks who owns a row need not load them.)"""

from __future__ import annotations

SCIM_PREFIX = "scim:"
LDAP_PREFIX = "ldap:"


def owner_words(source: str) -> str:
    """Who owns a row of the config file, the directory API or a SCIM source, as a person reads it."""
    if source.startswith(SCIM_PREFIX):
        return f"the SCIM source {source.removeprefix(SCIM_PREFIX)!r}"
    return {"config": "the config file", "api": "the directory API"}.get(source, f"source {source!r}")


def owned_by_directory(source: str) -> bool:
    """A row an identity provider or a directory owns (SCIM or LDAP)."""
    return source.startswith((SCIM_PREFIX, LDAP_PREFIX))


def source_words(source: str) -> str:
    """Who owns a row, as a person reads it."""
    if source.startswith(LDAP_PREFIX):
        return f"the LDAP source {source.removeprefix(LDAP_PREFIX)!r}"
    return owner_words(source)
