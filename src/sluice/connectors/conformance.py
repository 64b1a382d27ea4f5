"""The connector conformance checks: what every connector must do against its real target.

A connector's test setup gives a `ConnectorHarness` (a connector on a live server, sample resources and
a way to try the access with the target's own client); each `check_*` function here takes the harness
and raises `ConformanceError` when the connector falls short. Run them with pytest like so:

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_conformance(check, harness): check(harness)

Plain functions, no pytest inside, so a third-party connector runs the very same suite in its own
repository (docs/connectors.md).
"""

from __future__ import annotations

import secrets
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from sluice.connectors.base import AccessUnit, Connector, ConnectorContext, ManagedPrincipal
from sluice.domain.errors import TargetError


class ConformanceError(AssertionError):
    """A connector does not meet the contract."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


@dataclass(frozen=True)
class Sample:
    resource_type: str
    path: str
    permission: str


class ConnectorHarness(ABC):
    """A connector on its live target, and the target's own client to see what a grant really gives."""

    connector: Connector
    config: BaseModel  # the connector's validated config
    sample: Sample  # something to grant
    hostile: Sample  # a resource whose names are full of quotes, spaces and semicolons
    tagged: tuple[str, dict[str, str]]  # a path discovery must find, and tags it must carry
    has_sessions: bool = False  # the target keeps sessions that a revoke must end
    grantee_email: str = "ada@example.com"
    hostile_email: str | None = None  # a grantee whose name is hostile too, where the target uses it
    unreachable_within_seconds: float = 8.0
    # False for a connector that opens no connection (the SSH connector signs certificates and writes
    # a KRL file): the unreachable check then uses `broken()`, its target made unusable another way.
    reaches_a_server: bool = True

    @property
    def integration(self) -> str:
        """The integration name the connector was built with (override if it keeps it elsewhere)."""
        return str(getattr(self.connector, "name", ""))

    def unit(
        self, sample: Sample | None = None, *, email: str | None = None, connector: Connector | None = None
    ) -> AccessUnit:
        sample = sample or self.sample
        email = email or self.grantee_email
        grant_id = f"gr_{secrets.token_hex(6)}"
        return AccessUnit(
            grant_id=grant_id,
            principal=(connector or self.connector).principal_for(grant_id, email),
            grantee_email=email,
            resource_type=sample.resource_type,
            resource_path=sample.path,
            permission=sample.permission,
            ends_at=datetime.now(UTC) + timedelta(hours=1),
            secret=secrets.token_urlsafe(24) if self.connector.issues_secret else None,
        )

    @abstractmethod
    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        """Whether the grantee, with the target's own client, has the access `unit` names."""

    def open_session(self, unit: AccessUnit, details: dict[str, Any]) -> Any:
        """An open session of the grantee (targets with sessions), for `session_alive`."""
        return None

    def session_alive(self, session: Any) -> bool:
        raise NotImplementedError

    @abstractmethod
    def remove_by_hand(self, unit: AccessUnit) -> None:
        """What an operator would do: take the grant's access away in the target, outside Sluice."""

    @abstractmethod
    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        """The same connector, with the given timeouts, aimed at 127.0.0.1:`port`."""

    def broken(self) -> Connector:
        """For a connector that reaches no server: the same connector with its target out of use."""
        raise ConformanceError("a harness with reaches_a_server = False must override broken()")

    def sibling(self, *, integration: str | None = None, installation: str | None = None) -> Connector:
        """The same connector on the same server, for another integration name or working for another
        installation of Sluice (another store). Override if the constructor differs."""
        context = getattr(self.connector, "context", None)
        if not isinstance(context, ConnectorContext):
            raise ConformanceError("the connector keeps no `context`: override ConnectorHarness.sibling")
        if installation is not None:
            context = replace(context, installation=installation)
        cls: Any = type(self.connector)
        return cls(integration or self.integration, self.config, context)  # type: ignore[no-any-return]


# --- the checks


def check_contract_shape(h: ConnectorHarness) -> None:
    c = h.connector
    expect(isinstance(c, Connector), "the connector does not have every method of the Connector protocol")
    expect(isinstance(type(c).permissions, dict), "permissions is a class-level dict: type -> permissions")
    expect(h.sample.resource_type in type(c).permissions, "the sample's type is not in permissions")
    expect(h.sample.permission in type(c).permissions[h.sample.resource_type], "sample permission unknown")
    config = c.config_model.model_validate(h.config.model_dump())
    try:
        c.config_model.model_validate({**config.model_dump(), "no_such_option": 1})
    except ValidationError:
        pass
    else:
        raise ConformanceError("config_model accepts unknown keys: set extra='forbid'")
    a, b = (
        c.principal_for("gr_0123456789ab", h.grantee_email),
        c.principal_for("gr_0123456789ab", h.grantee_email),
    )
    expect(a == b, "principal_for is not stable for the same grant")


def check_discovery_gives_paths_parents_and_tags(h: ConnectorHarness) -> None:
    found = list(h.connector.discover())
    paths = [r.path for r in found]
    expect(len(paths) == len(set(paths)), "discovery lists a path twice")
    name = h.integration
    by_path = {r.path: r for r in found}
    for r in found:
        expect(r.path.startswith(f"{name}/"), f"{r.path!r} does not start with the integration name")
        expect(r.parent_path is None or r.parent_path in by_path, f"{r.path!r} has an unknown parent")
        expect(r.type in type(h.connector).permissions, f"{r.path!r} has a type not in permissions")
    for sample in (h.sample, h.hostile):
        expect(sample.path in by_path, f"discovery did not find {sample.path!r}")
        expect(by_path[sample.path].type == sample.resource_type, f"{sample.path!r} has the wrong type")
    path, tags = h.tagged
    expect(path in by_path, f"discovery did not find {path!r}")
    expect(tags.items() <= by_path[path].tags.items(), f"{path!r} lacks tags {tags}: {by_path[path].tags}")


def check_grant_twice_is_one_grant(h: ConnectorHarness) -> None:
    unit = h.unit()
    first = h.connector.grant(unit)
    second = h.connector.grant(unit)
    expect(first == second, f"granting again gave other details: {first} then {second}")
    expect(h.can_use(unit, second), "after granting twice the grantee has no access")
    mine = [m for m in h.connector.list_managed() if m.principal == unit.principal]
    expect(len(mine) == 1, f"granting twice left {len(mine)} principals, not one")
    h.connector.revoke(unit)


def check_revoke_twice_succeeds(h: ConnectorHarness) -> None:
    never = h.unit()
    h.connector.revoke(never)  # never granted: gone is what we want
    unit = h.unit()
    details = h.connector.grant(unit)
    h.connector.revoke(unit)
    h.connector.revoke(unit)
    expect(not h.can_use(unit, details), "access is still there after revoking twice")


def check_revoke_of_what_was_removed_by_hand_succeeds(h: ConnectorHarness) -> None:
    unit = h.unit()
    details = h.connector.grant(unit)
    h.remove_by_hand(unit)
    h.connector.revoke(unit)
    expect(not h.can_use(unit, details), "access came back after a revoke")
    expect(
        unit.principal not in _principals(h.connector.list_managed()), "a revoked principal is still listed"
    )


def check_revoke_ends_logins_and_sessions(h: ConnectorHarness) -> None:
    unit = h.unit()
    details = h.connector.grant(unit)
    expect(h.can_use(unit, details), "the grant gives no access")
    session = h.open_session(unit, details)
    if h.has_sessions:
        expect(session is not None and h.session_alive(session), "could not open a session to test")
    h.connector.revoke(unit)
    expect(not h.can_use(unit, details), "the grantee still has access after the revoke")
    if h.has_sessions:
        expect(not h.session_alive(session), "a session opened before the revoke is still alive")


def check_orphans_are_listed_and_removed_by_principal(h: ConnectorHarness) -> None:
    """A principal whose grant row is gone: the orphan sweep knows only what list_managed reports."""
    unit = h.unit()
    details = h.connector.grant(unit)
    listed = [m for m in h.connector.list_managed() if m.principal == unit.principal]
    expect(listed == [ManagedPrincipal(unit.principal, unit.grant_id)], f"list_managed reports {listed}")
    other = h.sibling(integration="other-" + h.integration)
    expect(
        unit.principal not in _principals(other.list_managed()), "another integration claims the principal"
    )
    orphan = listed[0]
    h.connector.revoke(AccessUnit(orphan.grant_id or "", orphan.principal, "", "", "", ""))
    expect(not h.can_use(unit, details), "the orphan still has access")
    expect(unit.principal not in _principals(h.connector.list_managed()), "the orphan is still listed")


def check_another_installations_principals_are_left_alone(h: ConnectorHarness) -> None:
    """Two installations of Sluice (two stores, a staging one beside production, say) on one target:
    neither lists the other's principal, so neither orphan sweep removes it, and neither's revoke
    takes the other's access away."""
    theirs = h.sibling(installation=f"other{secrets.token_hex(6)}")
    unit = h.unit()
    details = h.connector.grant(unit)
    expect(
        unit.grant_id not in _grant_ids(theirs.list_managed()),
        "another installation lists this installation's principal: its orphan sweep would remove it",
    )
    # What that installation's sweep would do, had it listed the principal; refusing is right too.
    with suppress(TargetError):
        theirs.revoke(AccessUnit(unit.grant_id, unit.principal, "", "", "", ""))
    expect(h.can_use(unit, details), "another installation's revoke took this installation's access away")
    expect(unit.grant_id in _grant_ids(h.connector.list_managed()), "the principal is no longer listed")

    other_unit = h.unit(connector=theirs)
    other_details = theirs.grant(other_unit)
    expect(
        other_unit.grant_id not in _grant_ids(h.connector.list_managed()),
        "this installation lists another installation's principal",
    )
    listed = [m for m in theirs.list_managed() if m.grant_id == other_unit.grant_id]
    expect(
        listed == [ManagedPrincipal(other_unit.principal, other_unit.grant_id)],
        f"an installation does not list its own principal as its own: {listed}",
    )
    h.connector.revoke(unit)
    expect(h.can_use(other_unit, other_details), "revoking one installation's grant ended the other's")
    theirs.revoke(AccessUnit(other_unit.grant_id, other_unit.principal, "", "", "", ""))
    expect(not h.can_use(other_unit, other_details), "the other installation's own orphan was not removed")


def check_hostile_names_are_data(h: ConnectorHarness) -> None:
    unit = h.unit(h.hostile, email=h.hostile_email)
    details = h.connector.grant(unit)
    expect(h.can_use(unit, details), f"no access after granting on {h.hostile.path!r}")
    h.connector.revoke(unit)
    expect(not h.can_use(unit, details), f"access to {h.hostile.path!r} outlived its revoke")


def _quick_retryable_failure(h: ConnectorHarness, down: Connector, call: str, unit: AccessUnit) -> None:
    started = time.monotonic()
    try:
        if call == "discover":
            list(down.discover())
        elif call == "list_managed":
            down.list_managed()
        else:
            getattr(down, call)(unit)
    except TargetError as exc:
        expect(exc.retryable, f"{call} on an unreachable target is not retryable: {exc.detail}")
    else:
        raise ConformanceError(f"{call} on an unreachable target did not fail")
    took = time.monotonic() - started
    expect(took < h.unreachable_within_seconds, f"{call} took {took:.1f}s to give up: no timeout?")


def check_unreachable_target_is_a_quick_retryable_error(h: ConnectorHarness) -> None:
    unit = h.unit()
    if not h.reaches_a_server:
        down = h.broken()
        for call in ("grant", "revoke", "list_managed"):
            _quick_retryable_failure(h, down, call, unit)
        expect(down.check(), "check() on an unusable target reports no problem")
        return
    with socket.socket() as probe:  # a closed port: connections are refused
        probe.bind(("127.0.0.1", 0))
        closed = int(probe.getsockname()[1])
    hole = socket.socket()  # a black hole: connections are accepted and never answered
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    try:
        for port, calls in (
            (closed, ("discover", "grant", "revoke", "list_managed")),
            (hole.getsockname()[1], ("revoke", "list_managed")),
        ):
            down = h.pointed_at(int(port), 0.5)
            for call in calls:
                _quick_retryable_failure(h, down, call, unit)
            expect(down.check(), "check() on an unreachable target reports no problem")
    finally:
        hole.close()


def check_check_passes(h: ConnectorHarness) -> None:
    problems = h.connector.check()
    expect(problems == [], f"check() reports problems on a good setup: {problems}")


def _principals(managed: list[ManagedPrincipal]) -> set[str]:
    return {m.principal for m in managed}


def _grant_ids(managed: list[ManagedPrincipal]) -> set[str | None]:
    return {m.grant_id for m in managed}


CHECKS: tuple[Callable[[ConnectorHarness], None], ...] = (
    check_contract_shape,
    check_check_passes,
    check_discovery_gives_paths_parents_and_tags,
    check_grant_twice_is_one_grant,
    check_revoke_twice_succeeds,
    check_revoke_of_what_was_removed_by_hand_succeeds,
    check_revoke_ends_logins_and_sessions,
    check_orphans_are_listed_and_removed_by_principal,
    check_another_installations_principals_are_left_alone,
    check_hostile_names_are_data,
    check_unreachable_target_is_a_quick_retryable_error,
)

__all__ = ["CHECKS", "ConformanceError", "ConnectorHarness", "Sample", "expect"]
