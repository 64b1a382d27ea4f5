"""Policy tests: expectations about who may request what, checked against a config file.

    tests:
      - name: alice reads orders
        who: alice@example.com
        may_request: read
        resource: prod-pg/appdb/public/orders
      - name: nobody writes personal data
        who: bob@example.com
        may_not_request: write
        any_resource: {integration: prod-pg, type: table, select: {tags: ["pii=true"]}}
      - name: carol approves alice's reads
        who: alice@example.com
        permission: read
        resource: prod-pg/appdb/public/orders
        approvers_include: [carol@example.com]
      - name: on-call DBAs need nobody's approval
        who: bob@example.com
        auto_approved: admin
        resource: prod-pg/appdb

Each test is judged by `explain`, the service that checks real requests, on a store built from the
config and an inventory snapshot (`services.targeting.snapshots`): a test can only pass if a request
would. A failure names the test and the flow that decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.domain.criteria import holds
from sluice.domain.errors import NotFound
from sluice.domain.selectors import Selector
from sluice.services.config.source import ConfigError, ConfigProblem, read_yaml
from sluice.services.requests.explain import Explanation, explain
from sluice.services.targeting.tags import resource_refs
from sluice.store.tables import Integration, Resource

MAX_TESTS = 5_000
MAX_MATCHES = 100_000  # resources one `any_resource` may judge


class AnyResource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    integration: str | None = Field(default=None, max_length=120)
    type: str | None = Field(default=None, max_length=60)
    select: Selector = Field(default_factory=Selector)


class PolicyTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    who: str = Field(min_length=3, max_length=320)
    resource: str | None = Field(default=None, max_length=2000)
    any_resource: AnyResource | None = None
    may_request: str | None = Field(default=None, max_length=60)
    may_not_request: str | None = Field(default=None, max_length=60)
    auto_approved: str | None = Field(default=None, max_length=60)
    permission: str | None = Field(default=None, max_length=60)
    approvers_include: list[str] = Field(default_factory=list, max_length=100)
    approvers_exclude: list[str] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _one_of_each(self) -> PolicyTest:
        if (self.resource is None) == (self.any_resource is None):
            raise ValueError(
                "name the resource with exactly one of `resource` (a path) and `any_resource` (a selection)"
            )
        asked = [
            k for k in ("may_request", "may_not_request", "auto_approved", "permission") if getattr(self, k)
        ]
        if len(asked) != 1:
            raise ValueError("say exactly one of may_request, may_not_request, auto_approved and permission")
        if self.permission and not (self.approvers_include or self.approvers_exclude):
            raise ValueError("`permission` goes with approvers_include or approvers_exclude")
        if (self.approvers_include or self.approvers_exclude) and not self.permission:
            raise ValueError("approvers_include/approvers_exclude go with `permission`")
        if self.any_resource is not None and not self.may_not_request:
            raise ValueError(
                "`any_resource` goes with may_not_request (for the others, name one resource with `resource`)"
            )
        return self


class PolicyTestFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tests: list[PolicyTest] = Field(min_length=1, max_length=MAX_TESTS)


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    detail: str  # why it failed, or what held; names the deciding flow


def read_policy_tests(text: str, filename: str) -> list[PolicyTest]:
    data, source, problems = read_yaml(text, filename)
    if problems:
        raise ConfigError(problems)
    try:
        return PolicyTestFile.model_validate(data).tests
    except ValidationError as exc:
        found: list[ConfigProblem] = [
            source.problem(tuple(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()
        ]
        raise ConfigError(found) from exc


def run_policy_tests(session: Session, tests: list[PolicyTest], *, now: datetime) -> list[Outcome]:
    return [_run(session, test, now) for test in tests]


def _run(session: Session, test: PolicyTest, now: datetime) -> Outcome:
    try:
        if test.any_resource is not None:
            return _none_may(session, test, test.any_resource, now)
        assert test.resource is not None
        permission = test.may_request or test.auto_approved or test.permission or ""
        found = explain(session, email=test.who, resource=test.resource, permission=permission, now=now)
    except NotFound as exc:
        return Outcome(test.name, False, exc.detail)
    if test.may_request:
        return Outcome(test.name, found.allowed, _decided(found))
    if test.auto_approved:
        return _automatic(test, found)
    return _approvers(test, found)


def _automatic(test: PolicyTest, found: Explanation) -> Outcome:
    chosen = _chosen(found)
    if not found.allowed or chosen is None:
        return Outcome(test.name, False, _decided(found))
    if chosen["approval_required"]:
        who = ", ".join(chosen["approvers"]) or "nobody yet"
        return Outcome(test.name, False, f"flow {found.chosen_flow} needs approval by {who}")
    return Outcome(test.name, True, f"flow {found.chosen_flow} approves on its own")


def _chosen(found: Explanation) -> dict[str, Any] | None:
    for verdict in found.flows:
        if verdict.flow == found.chosen_flow:
            return {"approval_required": verdict.approval_required, "approvers": verdict.approvers}
    return None


def _decided(found: Explanation) -> str:
    if found.allowed:
        return f"allowed by flow {found.chosen_flow}"
    refusals = "; ".join(f"{v.flow}: {v.reason}" for v in found.flows if v.reason) or "no flow applies"
    return f"{found.summary} ({refusals})"


def _approvers(test: PolicyTest, found: Explanation) -> Outcome:
    chosen = _chosen(found)
    if not found.allowed or chosen is None:
        return Outcome(test.name, False, _decided(found))
    approvers = set(chosen["approvers"])
    missing = sorted(set(test.approvers_include) - approvers)
    extra = sorted(set(test.approvers_exclude) & approvers)
    if missing or extra:
        said = [
            f"missing {', '.join(missing)}" if missing else "",
            f"also {', '.join(extra)}" if extra else "",
        ]
        detail = f"flow {found.chosen_flow}: approvers are {', '.join(sorted(approvers)) or 'nobody'}; " + (
            "; ".join(s for s in said if s)
        )
        return Outcome(test.name, False, detail)
    return Outcome(test.name, True, f"flow {found.chosen_flow}: approvers {', '.join(sorted(approvers))}")


def _none_may(session: Session, test: PolicyTest, where: AnyResource, now: datetime) -> Outcome:
    query = select(Resource).join(Integration).where(Resource.deleted_at.is_(None))
    if where.integration:
        query = query.where(Integration.name == where.integration)
    if where.type:
        query = query.where(Resource.type == where.type)
    rows = list(session.scalars(query.limit(MAX_MATCHES + 1)))
    if len(rows) > MAX_MATCHES:
        return Outcome(test.name, False, f"more than {MAX_MATCHES:,} resources match; narrow any_resource")
    criteria = where.select.criteria()
    matched = [ref for ref in resource_refs(session, rows) if holds(criteria, ref)]
    permission = test.may_not_request or ""
    for ref in matched:
        found = explain(session, email=test.who, resource=ref.path, permission=permission, now=now)
        if found.allowed:
            return Outcome(
                test.name,
                False,
                f"{test.who} may request {permission} on {ref.path} (flow {found.chosen_flow})",
            )
    return Outcome(test.name, True, f"refused on all {len(matched)} matching resources")
