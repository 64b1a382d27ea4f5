"""The access diff of a config change: who may newly request what, who no longer may, what becomes or
stops being automatic, and which live grants and pending requests the change would end.

Computed by applying the document inside a savepoint that is always rolled back, with the services that
decide for real: `requestable` for what each person may ask before and after, `would_approve` (the
approver engine) for who decides on what is pending or live (`approver_diff`), and `reevaluate` (the
worker's people pass) for the grants and requests that would end. Nothing here is a second
implementation of coverage or approval, so what `sluice apply` then does is what the diff said."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.services.config.affected import PolicyState, affected_people, holders_through
from sluice.services.config.apply import apply_config
from sluice.services.config.approver_diff import (
    ApproverChange,
    approver_changes,
    approvers_of,
    decided_under,
)
from sluice.services.config.document import ConfigDocument
from sluice.services.grants.reevaluate import Outcome, reevaluate
from sluice.services.targeting.requestable import RequestableFilter, requestable
from sluice.store.tables import AccessRequest, Grant, Identity

PAGE = 1_000
CHANGE_KINDS = ("may_newly", "no_longer", "now_automatic", "no_longer_automatic")

# (resource path, permission) -> whether a flow gives it without anyone's approval
Access = dict[tuple[str, str], bool]


@dataclass
class PersonDiff:
    email: str
    groups: frozenset[str] = frozenset()  # after the change (before it, for someone it removes)
    may_newly: list[tuple[str, str]] = field(default_factory=list)
    no_longer: list[tuple[str, str]] = field(default_factory=list)
    now_automatic: list[tuple[str, str]] = field(default_factory=list)
    no_longer_automatic: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.may_newly or self.no_longer or self.now_automatic or self.no_longer_automatic)


@dataclass
class AccessDiff:
    people: list[PersonDiff] = field(default_factory=list)
    grants_ended: list[dict[str, str]] = field(default_factory=list)  # id, grantee, resource, permission
    requests_closed: list[dict[str, str]] = field(default_factory=list)  # id, requester
    approvers: list[ApproverChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.people or self.grants_ended or self.requests_closed or self.approvers)

    def counts(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for person in self.people:
            for key in CHANGE_KINDS:
                totals[key] += len(getattr(person, key))
        return {
            "people": len(self.people),
            **{k: totals[k] for k in CHANGE_KINDS},
            "grants_ended": len(self.grants_ended),
            "requests_closed": len(self.requests_closed),
            "approver_changes": len(self.approvers),
        }


def access_of(session: Session, identity: Identity, now: datetime) -> Access:
    """Everything `identity` may request now, as the catalogue (`requestable`) lists it."""
    found: Access = {}
    where = RequestableFilter()
    while True:
        page = requestable(session, identity=identity, where=where, limit=PAGE, offset=0, now=now)
        for item in page.items:
            for option in item.options:
                found[(item.resource.path, option.permission)] = not option.approval_required
        if page.next_after is None:
            return found
        where = RequestableFilter(after=page.next_after)


def _active(session: Session, ids: set[str] | None) -> list[Identity]:
    query = select(Identity).where(Identity.active.is_(True)).order_by(Identity.email)
    if ids is not None:
        query = query.where(Identity.id.in_(sorted(ids)))
    return list(session.scalars(query))


def _compare(email: str, before: Access, after: Access) -> PersonDiff:
    diff = PersonDiff(email)
    diff.may_newly = sorted(set(after) - set(before))
    diff.no_longer = sorted(set(before) - set(after))
    for unit in sorted(set(before) & set(after)):
        if after[unit] and not before[unit]:
            diff.now_automatic.append(unit)
        elif before[unit] and not after[unit]:
            diff.no_longer_automatic.append(unit)
    return diff


def access_diff(session: Session, doc: ConfigDocument, *, now: datetime) -> AccessDiff:
    """What applying `doc` would change in who may do what. The store is left as it was.

    `requestable` runs only for the people the change can reach (`affected_people`), once with the
    document applied (inside a savepoint) and once after rolling it back."""
    state_before = PolicyState.read(session, now)
    result = AccessDiff()
    savepoint = session.begin_nested()
    try:
        plan = apply_config(session, doc, actor="sluice plan", now=now)
        session.flush()
        state_after = PolicyState.read(session, now)
        affected = affected_people(plan, state_before, state_after)
        decided = decided_under(session, state_before, state_after)
        approvers_after = approvers_of(session, state_after.flows, decided, now)
        after = {i.email: access_of(session, i, now) for i in _active(session, affected)}
        rechecked = None if affected is None else affected | holders_through(session, affected)
        _record_endings(session, result, reevaluate(session, now=now, identity_ids=rechecked))
    finally:
        savepoint.rollback()
        session.expire_all()  # what the savepoint changed in loaded objects must not leak into "before"
    before = {i.email: access_of(session, i, now) for i in _active(session, affected)}
    approvers_before = approvers_of(session, state_before.flows, decided, now)
    result.approvers = approver_changes(session, approvers_before, approvers_after)
    groups = {p.email: p.groups for state in (state_before, state_after) for p in state.people.values()}
    for email in sorted(set(before) | set(after)):
        person = _compare(email, before.get(email, {}), after.get(email, {}))
        person.groups = groups.get(email, frozenset())
        if not person.is_empty:
            result.people.append(person)
    return result


def _record_endings(session: Session, result: AccessDiff, outcome: Outcome) -> None:
    session.flush()
    for grant in session.scalars(select(Grant).where(Grant.id.in_(outcome.revoked)).order_by(Grant.id)):
        result.grants_ended.append(
            {
                "id": grant.id,
                "grantee": grant.identity.email,
                "resource": grant.resource_path,
                "permission": grant.permission,
                "why": grant.end_reason or "",
            }
        )
    for request in session.scalars(
        select(AccessRequest).where(AccessRequest.id.in_(outcome.cancelled)).order_by(AccessRequest.id)
    ):
        result.requests_closed.append({"id": request.id, "requester": request.requester.email})


DETAIL_LIMIT = 10  # a person's list longer than this is summarised by parent and permission


def summarised(units: list[tuple[str, str]]) -> list[str]:
    """Lines for a list of (path, permission): each one, or when there are many, counts by parent
    ("1,240 resources: read under prod-pg/appdb/public")."""
    if len(units) <= DETAIL_LIMIT:
        return [f"{permission} on {path}" for path, permission in units]
    groups: Counter[tuple[str, str]] = Counter(
        (path.rsplit("/", 1)[0], permission) for path, permission in units
    )
    return [
        f"{count:,} resources: {permission} under {parent}"
        for (parent, permission), count in sorted(groups.items())
    ]


def diff_as_dict(diff: AccessDiff) -> dict[str, object]:
    return {
        "counts": diff.counts(),
        "people": [
            {
                "email": p.email,
                **{
                    key: [{"resource": path, "permission": perm} for path, perm in getattr(p, key)]
                    for key in CHANGE_KINDS
                },
            }
            for p in diff.people
        ],
        "grants_ended": diff.grants_ended,
        "requests_closed": diff.requests_closed,
        "approver_changes": [change.as_dict() for change in diff.approvers],
    }
