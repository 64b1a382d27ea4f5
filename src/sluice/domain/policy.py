"""The policy evaluator: which flows allow an access unit, and who may approve it. Pure functions over
snapshots of the directory and the inventory taken *now* by the caller."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sluice.domain.flows import FlowSpec, Subject, Target


@dataclass(frozen=True)
class Person:
    email: str
    active: bool = True
    groups: frozenset[str] = field(default_factory=frozenset)
    manager: str | None = None


@dataclass(frozen=True)
class ResourceRef:
    integration: str
    type: str
    name: str
    path: str


@dataclass(frozen=True)
class Verdict:
    """Why one flow does or does not allow one access unit."""

    flow: str
    allowed: bool
    reason: str


def subject_matches(subject: Subject, person: Person) -> bool:
    if subject.user:
        return subject.user.lower() == person.email.lower()
    if subject.group:
        return subject.group in person.groups
    return False


def is_requester(flow: FlowSpec, person: Person) -> bool:
    return person.active and any(subject_matches(s, person) for s in flow.requesters)


def target_matches(target: Target, resource: ResourceRef, permission: str) -> str | None:
    """None when the target covers (resource, permission); otherwise the first reason it does not."""
    if target.integration != resource.integration:
        return f"targets integration {target.integration}, not {resource.integration}"
    if target.type != resource.type:
        return f"targets resources of type {target.type}, not {resource.type}"
    if permission not in target.permissions:
        return f"grants {', '.join(target.permissions)}, not {permission}"
    names = target.select.names
    if names is not None and resource.path not in names and resource.name not in names:
        return f"names only {', '.join(names)}"
    return None


def evaluate(flow: FlowSpec, person: Person, resource: ResourceRef, permission: str) -> Verdict:
    if not flow.active:
        return Verdict(flow.name, False, "the flow is switched off")
    if not person.active:
        return Verdict(flow.name, False, f"{person.email} is not active")
    if not is_requester(flow, person):
        who = ", ".join(s.describe() for s in flow.requesters)
        return Verdict(flow.name, False, f"{person.email} is not among the requesters ({who})")
    reasons = []
    for target in flow.targets:
        miss = target_matches(target, resource, permission)
        if miss is None:
            return Verdict(flow.name, True, f"{person.email} may request {permission} on {resource.path}")
        reasons.append(miss)
    return Verdict(flow.name, False, "no target covers it: " + "; ".join(reasons))


def allowing_flows(
    flows: Iterable[FlowSpec], person: Person, resource: ResourceRef, permission: str
) -> list[FlowSpec]:
    return [f for f in flows if evaluate(f, person, resource, permission).allowed]


def flow_for_units(
    flows: Sequence[FlowSpec], person: Person, units: Sequence[tuple[ResourceRef, str]]
) -> FlowSpec | None:
    """The flow that allows every unit, preferring one that needs no approval, then the longest."""
    candidates = [f for f in flows if all(evaluate(f, person, r, p).allowed for r, p in units)]
    if not candidates:
        return None
    candidates.sort(key=lambda f: (not f.auto_approve, -f.max_duration_delta.total_seconds(), f.name))
    return candidates[0]


def may_approve(flow: FlowSpec, approver: Person, requester: Person) -> bool:
    """Approver rights come from the flow, checked against the acting person. A requester never
    approves their own request."""
    if not approver.active or approver.email.lower() == requester.email.lower():
        return False
    for subject in flow.approvers:
        if subject.manager:
            if requester.manager and requester.manager.lower() == approver.email.lower():
                return True
        elif subject_matches(subject, approver):
            return True
    return False
