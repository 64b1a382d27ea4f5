"""Small helpers every connector shares: principal names that carry their installation, integration
and grant, error texts with secrets scrubbed out, and whether a host is this machine (TLS is on by
default toward any other)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from contextlib import suppress

from sluice.connectors.base import ManagedPrincipal, SecretRef
from sluice.domain.errors import InvalidInput, TargetError

_GRANT_ID = re.compile(r"^[a-z]+_([0-9a-f]{4,32})$")
PRINCIPAL_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,11}$")


def integration_tag(integration: str) -> str:
    """Four hex digits naming an integration inside a principal name: the mark principals carried
    before they carried their installation (a legacy name, `{prefix}{4 hex}_{grant hex}`)."""
    return hashlib.sha256(integration.encode()).hexdigest()[:4]


def installation_tag(installation: str, integration: str) -> str:
    """Seven hex digits naming one installation's integration inside a principal name, for targets
    that cannot carry a comment on a user: two integrations, or two installations of Sluice, on one
    server never take each other's users for their own. Seven, so that the longest prefix (12), the
    tag, `_` and a grant's 12 hex digits still fit MySQL's 32 characters."""
    return hashlib.sha256(f"{installation}\0{integration}".encode()).hexdigest()[:7]


def tagged_principal(prefix: str, integration: str, installation: str, grant_id: str) -> str:
    """`{prefix}{tag}_{grant hex}`: the name alone says which installation, integration and grant
    made it."""
    match = _GRANT_ID.match(grant_id)
    if not match:
        raise TargetError(f"grant id {grant_id!r} cannot name a principal", retryable=False)
    return f"{prefix}{installation_tag(installation, integration)}_{match.group(1)}"


def managed_by_name(
    prefix: str, integration: str, installation: str, principal: str
) -> ManagedPrincipal | None:
    """What a principal name says about its maker: this installation's (`tagged_principal`), a legacy
    name of this integration (`legacy=True`: no installation in it), or None: not ours to touch
    (another installation's, another integration's, or no Sluice name at all)."""
    heads = ((installation_tag(installation, integration), False), (integration_tag(integration), True))
    for tag, legacy in heads:
        head = f"{prefix}{tag}_"
        rest = principal[len(head) :]
        if principal.startswith(head) and re.fullmatch(r"[0-9a-f]{4,32}", rest):
            return ManagedPrincipal(principal=principal, grant_id=f"gr_{rest}", legacy=legacy)
    return None


def require_own_name(
    prefix: str, integration: str, installation: str, principal: str, grant_id: str, what: str
) -> str:
    """`principal`, when it is this installation's (or a legacy) name for `grant_id` (any grant when
    empty); a TargetError otherwise, so a grant or revoke never touches another installation's user."""
    found = managed_by_name(prefix, integration, installation, principal)
    if found is None or (grant_id and found.grant_id != grant_id):
        raise TargetError(
            f"{principal!r} is not {what} {integration} made for grant {grant_id} in this installation",
            retryable=False,
        )
    return principal


def resolved_secrets(refs: Iterable[SecretRef | None], extra: Iterable[str | None] = ()) -> list[str]:
    """Every secret text that must not show in an error, longest first."""
    found = [s for s in extra if s]
    for ref in refs:
        if ref is not None:
            with suppress(InvalidInput):
                found.append(ref.resolve("secret"))
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(detail: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        detail = detail.replace(secret, "***")
    return detail


def is_loopback(host: str | None) -> bool:
    """True for this machine: `localhost`, a loopback address, or a Unix socket directory (an
    empty host means the socket too). TLS is on by default toward every other host."""
    if not host or host.startswith("/") or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plaintext_warning(host: str, setting: str) -> str:
    """What `check` says when TLS toward a host beyond this machine was turned off."""
    return (
        f"PLAINTEXT: TLS to {host} is off ({setting}): the admin password and the grantees' sessions"
        " cross the network in clear; turn TLS on, or keep this target on loopback"
    )
