"""Who owns a directory row. Identities, groups and memberships carry their source: `config`, `api`,
`oidc`, `scim:<name>` (pushed by an identity provider) or `ldap:<name>` (read from a directory). Rows
of the last two change only through their source: the config file and the directory API refuse them."""

from __future__ import annotations

from sluice.services.directory.scim_common import SCIM_PREFIX, owner_words

LDAP_PREFIX = "ldap:"


def owned_by_directory(source: str) -> bool:
    """A row an identity provider or a directory owns (SCIM or LDAP)."""
    return source.startswith((SCIM_PREFIX, LDAP_PREFIX))


def source_words(source: str) -> str:
    """Who owns a row, as a person reads it."""
    if source.startswith(LDAP_PREFIX):
        return f"the LDAP source {source.removeprefix(LDAP_PREFIX)!r}"
    return owner_words(source)
