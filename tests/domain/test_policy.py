import random
from datetime import timedelta

import pytest

from sluice.domain.durations import format_duration, parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import FlowSpec
from sluice.domain.policy import Person, RequesterIndex, ResourceRef, evaluate, flow_for_units, is_requester
from sluice.domain.states import Actual, Desired, GrantState, RequestState, grant_state, request_state

ORDERS = ResourceRef("local-pg", "table", "orders", "local-pg/app/public/orders")
ALICE = Person("alice@example.com", groups=frozenset({"engineering"}), manager="carol@example.com")
CAROL = Person("carol@example.com", groups=frozenset({"managers"}))


def flow(**overrides: object) -> FlowSpec:
    spec: dict[str, object] = {
        "name": "eng-read",
        "requesters": [{"group": "engineering"}],
        "targets": [{"integration": "local-pg", "type": "table", "permissions": ["read"]}],
        "approvers": [{"manager": True}],
        "max_duration": "8h",
    }
    spec.update(overrides)
    return FlowSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("4h", 14400), ("1h30m", 5400), ("2d", 172800), ("45", 45)],
)
def test_durations_parse(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "abc", "15 minutes", "-5m", "1x"])
def test_bad_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput, match="duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    assert format_duration(timedelta(seconds=5400)) == "1h30m"
    assert parse_duration(format_duration(timedelta(hours=8))) == timedelta(hours=8)


def test_group_member_may_request_any_table() -> None:
    assert evaluate(flow(), ALICE, ORDERS, "read").allowed


def test_reasons_name_the_first_failed_condition() -> None:
    bob = Person("bob@example.com", groups=frozenset({"sre"}))
    assert "not among the requesters" in evaluate(flow(), bob, ORDERS, "read").reason
    assert "not write" in evaluate(flow(), ALICE, ORDERS, "write").reason
    other = ResourceRef("local-pg", "schema", "public", "local-pg/app/public")
    assert "type table, not schema" in evaluate(flow(), ALICE, other, "read").reason
    named = flow(
        targets=[
            {
                "integration": "local-pg",
                "type": "table",
                "select": {"names": ["customers"]},
                "permissions": ["read"],
            }
        ]
    )
    assert not evaluate(named, ALICE, ORDERS, "read").allowed


def test_inactive_people_match_nothing() -> None:
    gone = Person("alice@example.com", active=False, groups=frozenset({"engineering"}))
    assert not evaluate(flow(), gone, ORDERS, "read").allowed


def test_automatic_approval_is_preferred_when_several_flows_allow() -> None:
    chosen = flow_for_units([flow(), flow(name="auto", approvers=[])], ALICE, [(ORDERS, "read")])
    assert chosen is not None and chosen.name == "auto"


def test_the_requester_index_names_the_flows_is_requester_names() -> None:
    """Plain group requesters are found through the person's groups, any other condition is tested;
    either way the index answers as `is_requester` does, in the flows' order."""
    rng = random.Random(3)
    groups = ["a", "b", "c", "d"]
    shapes: list[object] = [
        {"group": "a"},
        {"group": "b"},
        {"user": "p1@example.com"},
        {"attribute": "group", "is_not": "c"},
        {"all": [{"group": "a"}, {"group": "d"}]},
        {"any": [{"group": "c"}, {"attribute": "team", "is": "x"}]},
    ]
    flows = [
        flow(name=f"f{n}", requesters=rng.sample(shapes, rng.randint(1, 2)) if n % 3 else [{"group": "b"}])
        for n in range(40)
    ]
    index = RequesterIndex(flows)
    for n in range(60):
        person = Person(
            f"p{n % 5}@example.com",
            active=n % 7 != 0,
            groups=frozenset(rng.sample(groups, rng.randint(0, 3))),
            attributes={"team": rng.choice(["x", "y"])},
        )
        assert index.naming(person) == [f for f in flows if is_requester(f, person)]


def test_manager_cannot_be_a_requester() -> None:
    with pytest.raises(ValueError, match="approver, not a requester"):
        flow(requesters=[{"manager": True}])


def test_grant_states_follow_desired_and_actual() -> None:
    assert grant_state(Desired.ACTIVE, Actual.UNKNOWN) is GrantState.GRANTING
    assert grant_state(Desired.REVOKED, Actual.UNKNOWN) is GrantState.REVOKING
    assert grant_state(Desired.REVOKED, Actual.NONE) is GrantState.NOT_GRANTED
    assert request_state("approved", [GrantState.ACTIVE, GrantState.GRANTING]) is RequestState.GRANTING
    assert request_state("cancelled", [GrantState.REVOKING]) is RequestState.REVOKING
    assert request_state("approved", [GrantState.REVOKED]) is RequestState.ENDED
