"""The people side of the config file and the domain: conditions, schedules, windows, extensions;
bad input refused with a clear message at its line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.domain.people import Person, Subject, holds
from sluice.domain.shifts import ScheduleSpec, parse_ical
from sluice.domain.windows import Extensions, TimeWindow
from sluice.services.config.apply import apply_config
from sluice.services.config.file import parse_config
from sluice.services.config.source import ConfigError
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.people_queries import on_call
from sluice.store.people_tables import PeopleChange
from sluice.store.tables import Base
from tests.services.config_samples import GOOD, edit, line_of

ALICE = Person(
    "alice@example.com",
    groups=frozenset({"eng", "sre-team"}),
    manager="carol@example.com",
    attributes={"department": "payments", "location": "paris"},
    shifts=frozenset({"payments"}),
)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"group": "eng"}, True),
        ({"user": "ALICE@example.com"}, True),
        ({"shift": "payments"}, True),
        ({"attribute": "department", "is": "payments"}, True),
        ({"attribute": "department", "is_not": "payments"}, False),
        ({"attribute": "location", "in": ["lyon", "paris"]}, True),
        ({"attribute": "group", "starts_with": "sre-"}, True),
        ({"attribute": "group", "contains": "team"}, True),
        ({"attribute": "group", "is_not": "dba"}, True),
        ({"attribute": "manager", "is": "carol@example.com"}, True),
        ({"attribute": "title", "is": "cto"}, False),
        ({"all": [{"group": "eng"}, {"attribute": "location", "is": "lyon"}]}, False),
        ({"any": [{"group": "dba"}, {"all": [{"group": "eng"}, {"shift": "payments"}]}]}, True),
    ],
)
def test_conditions_on_identity_attributes(condition: dict[str, object], expected: bool) -> None:
    assert holds(Subject.model_validate(condition), ALICE) is expected


def test_inactive_identities_match_nothing_and_shapes_stay_compact() -> None:
    inactive = Person("alice@example.com", active=False, groups=frozenset({"eng"}))
    assert not holds(Subject(group="eng"), inactive)
    subject = Subject.model_validate({"attribute": "location", "in": ["paris"]})
    assert subject.model_dump(mode="json") == {"attribute": "location", "in": ["paris"]}
    assert Subject.model_validate({"group": "sre"}).model_dump(mode="json") == {"group": "sre"}
    with pytest.raises(ValidationError, match="exactly one operator"):
        Subject.model_validate({"attribute": "location"})


def test_a_rotation_with_overrides_and_daylight_saving() -> None:
    spec = ScheduleSpec.model_validate(
        {
            "name": "payments",
            "members": ["a@x.io", "b@x.io"],
            "rotation": "7d",
            "handoff": "09:00",
            "timezone": "Europe/Paris",
            "start": "2026-03-23",
            "overrides": [{"user": "c@x.io", "start": "2026-03-25T00:00:00Z", "end": "2026-03-26T00:00:00Z"}],
        }
    )
    assert spec.on_call(datetime(2026, 3, 23, 7, 59, tzinfo=UTC)) == []
    assert spec.on_call(datetime(2026, 3, 23, 8, 0, tzinfo=UTC)) == ["a@x.io"]  # 09:00 CET
    assert spec.on_call(datetime(2026, 3, 25, 12, 0, tzinfo=UTC)) == ["c@x.io"]
    # After the switch to summer time the handoff is still 09:00 in Paris, i.e. 07:00 UTC.
    assert spec.on_call(datetime(2026, 3, 30, 6, 59, tzinfo=UTC)) == ["a@x.io"]
    assert spec.on_call(datetime(2026, 3, 30, 7, 0, tzinfo=UTC)) == ["b@x.io"]
    assert spec.next_change(datetime(2026, 3, 26, 0, 0, tzinfo=UTC)) == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )


def test_an_icalendar_feed_names_who_is_on_call() -> None:
    feed = parse_ical(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:On call: Dana (dana@x.io)\r\n"
        "DTSTART:20260105T090000Z\r\nDTEND:20260106T090000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nATTENDEE;CN=Eve:mailto:eve@x.io\r\n"
        "DTSTART;TZID=Europe/Paris:20260106T100000\r\nDTEND;TZID=Europe/Paris:20260107T10\r\n 0000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    spec = ScheduleSpec(name="ops", ical="https://example.com/ops.ics")
    assert spec.on_call(datetime(2026, 1, 5, 12, tzinfo=UTC), feed) == ["dana@x.io"]
    assert spec.on_call(datetime(2026, 1, 6, 9, tzinfo=UTC), feed) == ["eve@x.io"]
    assert spec.next_change(datetime(2026, 1, 6, 9, tzinfo=UTC), feed) == datetime(2026, 1, 7, 9, tzinfo=UTC)


def test_bad_domain_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match=r"overrides overlap: a@x\.io until"):
        ScheduleSpec.model_validate(
            {
                "name": "s",
                "members": ["a@x.io"],
                "overrides": [
                    {"user": "a@x.io", "start": "2026-01-01T00:00:00Z", "end": "2026-01-03T00:00:00Z"},
                    {"user": "b@x.io", "start": "2026-01-02T00:00:00Z", "end": "2026-01-04T00:00:00Z"},
                ],
            }
        )
    with pytest.raises(ValidationError, match="the window ends at 08:00, not after it starts at 09:00"):
        TimeWindow(start="09:00", end="08:00")
    with pytest.raises(ValidationError, match="longer than the ceiling 4h"):
        Extensions(length="8h", ceiling="4h")
    with pytest.raises(ValidationError, match="either 'approvers' or 'approval'"):
        FlowSpec.model_validate(
            {
                "name": "f",
                "requesters": [{"group": "g"}],
                "targets": [{"integration": "i", "type": "t", "permissions": ["p"]}],
                "approvers": [{"manager": True}],
                "approval": {"groups": [{"approvers": [{"manager": True}]}]},
            }
        )


def test_a_condition_on_an_unknown_attribute_is_refused_at_its_line() -> None:
    text = edit(GOOD, "requesters: [{group: leads}]", "requesters: [{attribute: departmnt, is: eng}]")
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "sluice.yaml")
    (problem,) = [p for p in raised.value.problems if "departmnt" in p.message]
    assert problem.line == line_of(text, "requesters: [{attribute: departmnt")
    assert (
        "condition on unknown attribute 'departmnt'; attributes: department, group, manager"
        in problem.message
    )


def test_a_shift_naming_no_schedule_and_bad_schedules_are_refused() -> None:
    text = edit(GOOD, "requesters: [{group: leads}]", "requesters: [{shift: payments}]")
    with pytest.raises(ConfigError, match="shift 'payments' names no schedule"):
        parse_config(text, "sluice.yaml")
    text += (
        "schedules:\n  - name: payments\n    members: [alice@example.com]\n    overrides:\n"
        "      - {user: bob@example.com, start: '2026-01-01T00:00:00Z', end: '2026-01-03T00:00:00Z'}\n"
        "      - {user: alice@example.com, start: '2026-01-02T00:00:00Z', end: '2026-01-04T00:00:00Z'}\n"
    )
    with pytest.raises(ConfigError, match="overrides overlap"):
        parse_config(text, "sluice.yaml")


def test_schedules_apply_and_queue_a_re_evaluation(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    Base.metadata.create_all(engine)
    factory = make_session_factory(engine)
    text = edit(GOOD, "requesters: [{group: leads}]", "requesters: [{shift: payments}]")
    text += (
        "schedules:\n  - name: payments\n    members: [alice@example.com, bob@example.com]\n"
        "    rotation: 1d\n"
    )
    now = datetime(2026, 1, 6, 10, tzinfo=UTC)
    with transaction(factory) as session:
        doc = parse_config(text, "sluice.yaml", session=session)
        plan = apply_config(session, doc, actor="admin@example.com", now=now)
        assert any(e.kind == "schedule" and e.name == "payments" for e in plan.created)
    with transaction(factory) as session:
        assert on_call(session, "payments", now) == ["bob@example.com"]
        assert session.scalars(select(PeopleChange)).all()
