"""An integration's life: open to requests, disabled by its config, retiring, retired."""

from __future__ import annotations

from enum import StrEnum

from sluice.domain.errors import InvalidInput


class Lifecycle(StrEnum):
    ACTIVE = "active"
    RETIRING = "retiring"  # its grants are being revoked and its leftovers removed from the target
    RETIRED = "retired"  # nothing of it is left in the target; only its history remains


class IntegrationClosed(InvalidInput):
    """A request, or an automatic grant, for a resource of an integration that takes none now."""

    title = "Integration closed"
    slug = "integration-closed"


def closed_reason(name: str, *, disabled: bool, lifecycle: str) -> str | None:
    """Why an integration accepts no new request now, in words; None when it accepts them."""
    if lifecycle == Lifecycle.RETIRED:
        return f"integration {name!r} is retired: it grants nothing any more"
    if lifecycle == Lifecycle.RETIRING:
        return f"integration {name!r} is being retired: it grants nothing any more"
    if disabled:
        return (
            f"integration {name!r} is disabled in the config: it takes no new requests "
            "(access already granted runs out as planned)"
        )
    return None


def refuse_closed(name: str, *, disabled: bool, lifecycle: str) -> None:
    reason = closed_reason(name, disabled=disabled, lifecycle=lifecycle)
    if reason is not None:
        raise IntegrationClosed(reason, integration=name)
