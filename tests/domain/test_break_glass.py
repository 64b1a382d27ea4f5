"""The break-glass section of a flow, and where a break-glass request stands with its review."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sluice.domain.flows import FlowSpec
from sluice.domain.states import ReviewState, review_state

FLOW = {
    "name": "db-emergency",
    "requesters": [{"group": "sre"}],
    "targets": [{"integration": "pg", "type": "database", "permissions": ["admin"]}],
    "approvers": [{"group": "dba"}],
}


def test_defaults_and_parsed_duration() -> None:
    flow = FlowSpec.model_validate(FLOW | {"break_glass": {}})
    assert flow.break_glass is not None
    assert flow.break_glass.max_duration_delta == timedelta(hours=1)
    assert flow.break_glass.one_at_a_time is True
    assert flow.break_glass.allowed is None
    assert FlowSpec.model_validate(FLOW).break_glass is None


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"max_duration": "forever"}, "forever"),
        ({"allowed": [{"manager": True}]}, "'manager' names an approver"),
        ({"one_at_a_time": "sometimes"}, "one_at_a_time"),
        ({"reason": "x"}, "reason"),
    ],
)
def test_a_bad_section_is_refused(section: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError) as raised:
        FlowSpec.model_validate(FLOW | {"break_glass": section})
    assert words in str(raised.value)


def test_break_glass_needs_someone_to_review_it() -> None:
    with pytest.raises(ValidationError) as raised:
        FlowSpec.model_validate({k: v for k, v in FLOW.items() if k != "approvers"} | {"break_glass": {}})
    assert "break_glass needs approvers to review it" in str(raised.value)


def test_review_state() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    assert review_state(False, None, None) is None
    assert review_state(True, None, None) == ReviewState.AWAITING_REVIEW
    assert review_state(True, now, "ok") == ReviewState.REVIEWED
    assert review_state(True, now, "revoke") == ReviewState.REVOKED
