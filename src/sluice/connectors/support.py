"""Small helpers every connector shares: principal names that carry their integration and grant, and
error texts with secrets scrubbed out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from contextlib import suppress

from sluice.connectors.base import SecretRef
from sluice.domain.errors import InvalidInput, TargetError

_GRANT_ID = re.compile(r"^[a-z]+_([0-9a-f]{4,32})$")
PRINCIPAL_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,11}$")


def integration_tag(integration: str) -> str:
    """Four hex digits naming an integration inside a principal name, for targets that cannot carry a
    comment on a user: two integrations on one server never take each other's users for their own."""
    return hashlib.sha256(integration.encode()).hexdigest()[:4]


def tagged_principal(prefix: str, integration: str, grant_id: str) -> str:
    """`{prefix}{tag}_{grant hex}`: the name alone says which integration and grant made it."""
    match = _GRANT_ID.match(grant_id)
    if not match:
        raise TargetError(f"grant id {grant_id!r} cannot name a principal", retryable=False)
    return f"{prefix}{integration_tag(integration)}_{match.group(1)}"


def grant_of_principal(prefix: str, integration: str, principal: str) -> str | None:
    """The grant id a `tagged_principal` name carries, when it is this integration's; else None."""
    head = prefix + integration_tag(integration) + "_"
    if not principal.startswith(head):
        return None
    rest = principal[len(head) :]
    return f"gr_{rest}" if re.fullmatch(r"[0-9a-f]{4,32}", rest) else None


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
