"""docs/events.md is what `python -m sluice.events.schemas` renders from the event types kept as data,
and every event type has a valid schema there: a new event or a changed detail fails here until the
page is rendered again."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from sluice.events.audit import Action
from sluice.events.event_types import EVENT_TYPES
from sluice.events.schemas import MARKER, event_schema, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_page_is_rendered_from_the_event_types() -> None:
    text = PAGE.read_text()
    assert MARKER in text
    assert text.split(MARKER, 1)[1] == render().split(MARKER, 1)[1], (
        "docs/events.md is stale: run `python -m sluice.events.schemas`"
    )


@pytest.mark.parametrize("action", list(Action), ids=lambda action: action.value)
def test_every_event_type_has_a_valid_documented_schema(action: Action) -> None:
    assert action in EVENT_TYPES, f"{action.value} has no entry in sluice/events/event_types.py"
    Draft202012Validator.check_schema(event_schema(action))
    assert f"### `{action.value}`" in PAGE.read_text()
