"""Who may decide on a request, as pure functions: approver kinds, and separation of duties (the
requester, the grantees and, when the flow says so, their direct reports never decide)."""

from __future__ import annotations

from sluice.domain.approval import ApprovalContext, ApprovalPolicy, Bar, bar_of, entitled, satisfied
from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person
from tests.domain.test_policy import ALICE, CAROL, flow

DAVE = Person("dave@example.com", groups=frozenset({"engineering"}), manager="alice@example.com")
ERIN = Person("erin@example.com", groups=frozenset({"engineering"}), manager="frank@example.com")


def may_approve(spec: FlowSpec, approver: Person, requester: Person, grantee: Person | None = None) -> bool:
    """Whether `approver` may decide, at first, on a request by `requester` for `grantee` (themself
    when None) under `spec`, with no resource owners known."""
    policy = spec.approval_policy
    ctx = ApprovalContext(requester, grantees=frozenset({(grantee or requester).email}))
    return policy is not None and entitled(policy, approver, ctx, 1)


def test_requester_never_approves_own_request_even_if_listed() -> None:
    spec = flow(approvers=[{"user": "alice@example.com"}, {"group": "engineering"}])
    assert not may_approve(spec, ALICE, ALICE)


def test_manager_approves_and_others_do_not() -> None:
    assert may_approve(flow(), CAROL, ALICE)
    assert not may_approve(flow(), Person("dave@example.com"), ALICE)


def test_the_grantee_never_approves_access_for_themselves_whoever_asked() -> None:
    spec = flow(approvers=[{"group": "engineering"}])
    assert may_approve(spec, DAVE, ALICE, ERIN)
    assert not may_approve(spec, ERIN, ALICE, ERIN)
    assert not may_approve(spec, ALICE, ALICE, ERIN)


def _policy(**extra: object) -> ApprovalPolicy:
    return ApprovalPolicy.model_validate({"groups": [{"approvers": [{"group": "engineering"}]}], **extra})


def test_bars_name_the_requester_first_then_the_grantee_then_direct_reports() -> None:
    ctx = ApprovalContext(ALICE, grantees=frozenset({"erin@example.com"}))
    strict = _policy(distinct_from=["requester", "grantee", "direct_reports"])
    assert bar_of(strict, ALICE, ctx) == Bar.REQUESTER
    assert bar_of(strict, ERIN, ctx) == Bar.GRANTEE
    assert bar_of(strict, DAVE, ctx) == Bar.DIRECT_REPORT  # dave reports to alice, the requester
    assert bar_of(_policy(), DAVE, ctx) is None
    assert bar_of(strict, CAROL, ctx) is None
    lenient = _policy(self_approval=True)
    assert bar_of(lenient, ALICE, ctx) is None and bar_of(lenient, ERIN, ctx) is None


def test_a_direct_report_of_the_grantee_is_barred_too() -> None:
    report = Person("gus@example.com", groups=frozenset({"engineering"}), manager="Frank@Example.com")
    ctx = ApprovalContext(ALICE, grantees=frozenset({"frank@example.com"}))
    assert bar_of(_policy(distinct_from=["direct_reports"]), report, ApprovalContext(ALICE)) is None
    assert bar_of(_policy(distinct_from=["direct_reports"]), report, ctx) == Bar.DIRECT_REPORT


def test_a_barred_persons_approval_never_counts() -> None:
    ctx = ApprovalContext(ALICE, grantees=frozenset({"erin@example.com"}))
    policy = _policy()
    assert not satisfied(policy, [ERIN], ctx, 1)
    assert not satisfied(policy, [ALICE], ctx, 1)
    assert satisfied(policy, [DAVE], ctx, 1)


def test_a_policy_without_distinct_from_is_stored_as_before_the_key_existed() -> None:
    """Flows stored earlier compare equal to the same flow read again, so `sluice plan` shows no
    change for a config nobody edited."""
    assert "distinct_from" not in _policy().model_dump(mode="json")
    strict = _policy(distinct_from=["direct_reports"])
    assert strict.model_dump(mode="json")["distinct_from"] == ["direct_reports"]
    assert ApprovalPolicy.model_validate(strict.model_dump(mode="json")) == strict
