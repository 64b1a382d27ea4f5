"""The policy evaluator: which flows allow an access unit. Pure functions over snapshots of the
directory and the inventory taken *now* by the caller. Who may approve is `domain.approval`'s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sluice.domain import criteria
from sluice.domain.approval import approvals_needed
from sluice.domain.criteria import first_miss
from sluice.domain.flows import FlowSpec, Subject, Target, Trigger
from sluice.domain.people import Person, any_holds, holds
from sluice.domain.people import miss as person_miss

__all__ = ["Person", "ResourceRef", "Verdict", "evaluate", "flow_for_units"]


@dataclass(frozen=True)
class ResourceRef:
    integration: str
    type: str
    name: str
    path: str
    id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def ancestors(self) -> list[str]:
        """Paths of the resources above this one, nearest first (the integration is not one)."""
        parts = self.path.split("/")
        return ["/".join(parts[:n]) for n in range(len(parts) - 1, 1, -1)]


@dataclass(frozen=True)
class Verdict:
    """Why one flow does or does not allow one access unit."""

    flow: str
    allowed: bool
    reason: str


def subject_matches(subject: Subject, person: Person) -> bool:
    return holds(subject, person)


def is_requester(flow: FlowSpec, person: Person) -> bool:
    return any_holds(flow.requesters, person)


def is_self_serve(flow: FlowSpec) -> bool:
    """A flow people may ask under: on, and not one that grants by itself (automatic)."""
    return flow.active and flow.trigger == Trigger.SELF_SERVE


class RequesterIndex:
    """Which of a set of flows name a person among their requesters (`is_requester`), for a caller that
    asks it of the same flows again and again: a flow whose requesters are all plain `{group: NAME}`
    (most are) is found through the person's groups, a set lookup, instead of being tested condition
    by condition; of the others, flows whose requesters are written the same (`requesters_key`) are
    tested once for all of them."""

    def __init__(self, flows: Sequence[FlowSpec]) -> None:
        self._flows = tuple(flows)
        self._by_group: dict[str, list[int]] = {}
        self._alike: dict[str, list[int]] = {}
        for number, flow in enumerate(self._flows):
            # a `group` shorthand is the whole condition (`Subject._one_shape`): it holds exactly
            # when the (active) person is in that group
            groups = [subject.group for subject in flow.requesters]
            if all(groups):
                for group in groups:
                    self._by_group.setdefault(str(group), []).append(number)
            else:
                self._alike.setdefault(requesters_key(flow), []).append(number)

    def naming(self, person: Person) -> list[FlowSpec]:
        """The flows that name the person, in their given order."""
        if not person.active:
            return []
        found = {number for group in person.groups for number in self._by_group.get(group, ())}
        for alike in self._alike.values():
            if is_requester(self._flows[alike[0]], person):
                found.update(alike)
        return [self._flows[number] for number in sorted(found)]


def covers(
    target: Target, resource: ResourceRef, permission: str, selected: criteria.Criteria | None = None
) -> bool:
    """Whether the target covers (resource, permission): `target_matches` without the words, for
    passes over many grants that only need the answer. `selected` is the target's selector as
    criteria, when the caller has it at hand already (a pass over many resources)."""
    return (
        target.bundle is None
        and target.integration in (None, resource.integration)
        and target.type in (None, resource.type)
        and permission in target.permissions
        and criteria.holds(target.select.criteria() if selected is None else selected, resource)
    )


def requesters_key(flow: FlowSpec) -> str:
    """Flows whose requesters are written the same share this key: who may request under one may
    request under all of them, so a pass over many people checks each condition once per person."""
    return "|".join(s.model_dump_json() for s in flow.requesters)


def target_matches(target: Target, resource: ResourceRef, permission: str) -> str | None:
    """None when the target covers (resource, permission); otherwise the first reason it does not.
    Bundle and scope references are expected resolved (`domain.bundles.resolve_flow`)."""
    if target.bundle is not None:
        return f"bundle {target.bundle} is not defined"
    if target.integration is not None and target.integration != resource.integration:
        return f"targets integration {target.integration}, not {resource.integration}"
    if target.type is not None and target.type != resource.type:
        return f"targets resources of type {target.type}, not {resource.type}"
    if permission not in target.permissions:
        return f"grants {', '.join(target.permissions)}, not {permission}"
    return first_miss(target.select.criteria(), resource)


def reads_tags(flows: Iterable[FlowSpec]) -> bool:
    """Whether `evaluate` under any of these flows can look at a resource's tags (some target selects
    by tag, in its selector, query or a resolved scope). When none can, a request's resources are
    checked without reading their tags."""
    return any(
        target.bundle is None and criteria.reads_tags(target.select.criteria())
        for flow in flows
        for target in flow.targets
    )


def evaluate(flow: FlowSpec, person: Person, resource: ResourceRef, permission: str) -> Verdict:
    if not flow.active:
        return Verdict(flow.name, False, "the flow is switched off")
    if flow.trigger == Trigger.AUTOMATIC:
        return Verdict(flow.name, False, "the flow grants automatically; it is not requested")
    if not person.active:
        return Verdict(flow.name, False, f"{person.email} is not active")
    if not is_requester(flow, person):
        why = "; ".join(person_miss(s, person) for s in flow.requesters)
        return Verdict(flow.name, False, f"{person.email} is not among the requesters: {why}")
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
    """The flow that allows every unit, preferring the one that needs the fewest approvals (none
    first), then the longest."""
    candidates = [f for f in flows if all(evaluate(f, person, r, p).allowed for r, p in units)]
    return preferred_flow(candidates)


def preferred_flow(allowing: Sequence[FlowSpec]) -> FlowSpec | None:
    """Of flows that all allow a request, the one it goes to: the fewest approvals (none first), then
    the longest, then by name."""
    if len(allowing) < 2:  # none, or the only one: no policy to build and compare
        return allowing[0] if allowing else None
    return min(
        allowing,
        key=lambda f: (approvals_needed(f.approval_policy), -f.max_duration_delta.total_seconds(), f.name),
    )
