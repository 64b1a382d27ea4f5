"""People change and access follows: shifts, automatic flows, leaving a group, deactivation, time
windows and later starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sluice.domain.errors import InvalidInput, NotAllowed
from sluice.domain.states import Actual, Desired
from sluice.services.directory.changes import set_group, set_identity
from sluice.store.db import transaction
from sluice.store.people_queries import on_call
from sluice.store.tables import AuditEvent
from tests.people.conftest import People, email

TARGET = [{"integration": "groups", "type": "group", "permissions": ["member"]}]


def test_an_on_call_automatic_flow_grants_at_the_shift_start_and_revokes_at_the_handoff(
    people: People,
) -> None:
    # Clock: Monday 2026-01-05 09:00 UTC. Rotation starts that day at 10:00 Paris (09:00 UTC) is now;
    # use a start one day later so nobody is on call yet.
    people.schedule(
        {
            "name": "payments",
            "members": [email("alice"), email("bob")],
            "rotation": "1d",
            "handoff": "12:00",
            "timezone": "Europe/Paris",
            "start": "2026-01-05",
        }
    )
    people.flow(
        {
            "name": "payments-oncall",
            "trigger": "automatic",
            "requesters": [{"shift": "payments"}],
            "targets": [
                {
                    "integration": "groups",
                    "type": "group",
                    "select": {"names": ["payments-ro"]},
                    "permissions": ["member"],
                }
            ],
            "max_duration": "2h",
        }
    )
    worker = people.worker()
    worker.run_once()
    assert "payments-ro" not in people.groups_of("alice")
    # The worker wakes at the shift start (11:00 UTC = 12:00 Paris).
    assert worker.seconds_until_next() <= 2 * 3600
    people.clock.now = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    worker.run_once()
    assert "payments-ro" in people.groups_of("alice")
    # Leases are renewed while the shift lasts.
    for _ in range(23):
        people.clock.advance(hours=1)
        worker.run_once()
        if people.clock.now.hour == 10:
            assert "payments-ro" in people.groups_of("alice")
    people.clock.now = datetime(2026, 1, 6, 11, 0, tzinfo=UTC)  # handoff to bob
    worker.run_once()
    assert "payments-ro" not in people.groups_of("alice")
    assert "payments-ro" in people.groups_of("bob")
    ended = [g for g in people.grants_of("alice") if g.desired == Desired.REVOKED]
    assert ended and all(g.end_reason == "no longer eligible: not on call for payments" for g in ended)
    with transaction(people.factory) as session:
        assert on_call(session, "payments", people.clock()) == [email("bob")]


def test_a_group_automatic_flow_covers_everyone_and_follows_membership(people: People) -> None:
    people.flow(
        {
            "name": "dba-audit",
            "trigger": "automatic",
            "requesters": [{"group": "dba"}],
            "targets": TARGET,
            "max_duration": "1h",
        }
    )
    worker = people.worker()
    worker.run_once()
    assert {"oncall", "payments-ro", "audit"} <= people.groups_of("erin")
    with transaction(people.factory) as session:
        set_group(
            session,
            name="dba",
            description=None,
            members=None,
            add=[],
            remove=[email("erin")],
            actor="admin@example.com",
            now=people.clock(),
        )
    worker.run_once()
    assert not {"oncall", "payments-ro", "audit"} & people.groups_of("erin")
    assert {"oncall", "payments-ro", "audit"} <= people.groups_of("dave")


def test_leaving_a_group_revokes_the_grant_that_depended_on_it(people: People) -> None:
    people.flow(
        {"name": "sre-oncall", "requesters": [{"group": "sre"}], "targets": TARGET, "max_duration": "8h"}
    )
    request_id = people.submit("bob", minutes=240)
    worker = people.worker()
    worker.run_once()
    assert "oncall" in people.groups_of("bob")
    with transaction(people.factory) as session:
        set_identity(
            session,
            email=email("bob"),
            fields={"groups": []},
            replace=False,
            actor="admin@example.com",
            now=people.clock(),
        )
    worker.run_once()
    assert "oncall" not in people.groups_of("bob")
    (grant,) = people.grants_of("bob")
    assert grant.request_id == request_id
    assert grant.desired == Desired.REVOKED and grant.actual == Actual.REVOKED
    assert grant.end_reason == "no longer eligible: not in group sre"


def test_a_condition_on_an_attribute_follows_the_directory(people: People) -> None:
    people.flow(
        {
            "name": "payments-team",
            "requesters": [{"attribute": "department", "is": "payments"}],
            "targets": TARGET,
            "max_duration": "8h",
        }
    )
    people.submit("alice", minutes=120)
    with pytest.raises(NotAllowed) as refused:
        people.submit("bob")
    assert "department is platform, wanted department is payments" in refused.value.extra["reasons"]
    worker = people.worker()
    worker.run_once()
    with transaction(people.factory) as session:
        set_identity(
            session,
            email=email("alice"),
            fields={"attributes": {"department": "risk"}},
            replace=False,
            actor="admin@example.com",
            now=people.clock(),
        )
    worker.run_once()
    (grant,) = people.grants_of("alice")
    assert grant.desired == Desired.REVOKED
    assert grant.end_reason == "no longer eligible: department is risk, wanted department is payments"


def test_deactivation_revokes_everything_and_cancels_pending_requests(people: People) -> None:
    people.flow(
        {"name": "sre-oncall", "requesters": [{"group": "sre"}], "targets": TARGET, "max_duration": "8h"}
    )
    people.flow(
        {
            "name": "sre-audit",
            "requesters": [{"group": "sre"}],
            "targets": [
                {
                    "integration": "groups",
                    "type": "group",
                    "select": {"names": ["audit"]},
                    "permissions": ["member"],
                }
            ],
            "approval": {"groups": [{"approvers": [{"group": "security"}]}]},
            "max_duration": "8h",
        }
    )
    people.flow(
        {"name": "dba-all", "trigger": "automatic", "requesters": [{"group": "dba"}], "targets": TARGET}
    )
    people.submit("dave", group="oncall", minutes=120)
    pending = people.submit("dave", group="audit", flow_name="sre-audit")
    worker = people.worker()
    worker.run_once()
    assert "oncall" in people.groups_of("dave")
    with transaction(people.factory) as session:
        set_identity(
            session,
            email=email("dave"),
            fields={"active": False},
            replace=False,
            actor="admin@example.com",
            now=people.clock(),
        )
    worker.run_once()
    assert not {"oncall", "payments-ro", "audit"} & people.groups_of("dave")
    assert all(g.desired == Desired.REVOKED for g in people.grants_of("dave"))
    assert all(g.actual != Actual.ACTIVE for g in people.grants_of("dave"))
    assert people.status(pending) == "cancelled"


def test_a_time_window_refuses_a_request_outside_it(people: People) -> None:
    window = {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00",
        "end": "17:00",
        "timezone": "UTC",
    }
    people.flow(
        {
            "name": "office-hours",
            "requesters": [{"group": "sre"}],
            "targets": TARGET,
            "max_duration": "8h",
            "window": window,
        }
    )
    people.clock.now = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)  # a Saturday
    with pytest.raises(NotAllowed, match="grants only during mon,tue,wed,thu,fri 09:00-17:00 UTC"):
        people.submit("bob")
    people.clock.now = datetime(2026, 1, 12, 16, 0, tzinfo=UTC)  # Monday, one hour before closing
    people.submit("bob", minutes=240)
    (grant,) = people.grants_of("bob")
    assert grant.ends_at == datetime(2026, 1, 12, 17, 0, tzinfo=UTC)  # ends when the window closes


def test_a_future_dated_request_starts_and_ends_on_time(people: People) -> None:
    people.flow(
        {"name": "sre-oncall", "requesters": [{"group": "sre"}], "targets": TARGET, "max_duration": "8h"}
    )
    start = people.clock() + timedelta(hours=3)
    people.submit("bob", minutes=60, starts_at=start)
    worker = people.worker()
    worker.run_once()
    assert "oncall" not in people.groups_of("bob")
    assert 0 < worker.seconds_until_next() <= 3 * 3600
    people.clock.now = start
    worker.run_once()
    assert "oncall" in people.groups_of("bob")
    (grant,) = people.grants_of("bob")
    assert grant.ends_at == start + timedelta(minutes=60)  # the clock starts when access starts
    people.clock.now = start + timedelta(minutes=50)
    worker.run_once()
    with transaction(people.factory) as session:
        warned = session.scalars(select(AuditEvent).where(AuditEvent.action == "grant.ending_soon")).all()
        assert len(warned) == 1
    people.clock.now = start + timedelta(minutes=60)
    worker.run_once()
    assert "oncall" not in people.groups_of("bob")
    with pytest.raises(InvalidInput, match="in the past"):
        people.submit("bob", starts_at=people.clock() - timedelta(hours=1))


def test_requests_for_others_follow_the_flow(people: People) -> None:
    people.flow(
        {
            "name": "managers-for-reports",
            "requesters": [{"group": "managers"}],
            "targets": TARGET,
            "max_duration": "8h",
            "for_direct_reports": True,
        }
    )
    with transaction(people.factory) as session:
        alice = people.identity(session, "alice")
        dave = people.identity(session, "dave")
    people.submit("carol", grantee=alice)
    assert [g.identity_id for g in people.grants_of("alice")] == ["id_alice"]
    with pytest.raises(NotAllowed, match="not someone this flow lets"):
        people.submit("carol", grantee=dave)


def test_extensions_are_bounded_by_count_length_and_ceiling(people: People) -> None:
    from sluice.services.grants.extensions import extend_grant

    people.flow(
        {
            "name": "sre-oncall",
            "requesters": [{"group": "sre"}],
            "targets": TARGET,
            "max_duration": "2h",
            "extensions": {"max_count": 2, "length": "1h", "ceiling": "3h"},
        }
    )
    people.submit("bob", minutes=120)
    worker = people.worker()
    worker.run_once()
    (grant,) = people.grants_of("bob")
    start = grant.starts_at
    assert start is not None

    def extend(stem: str, by: timedelta) -> datetime | None:
        with transaction(people.factory) as session:
            row = extend_grant(
                session,
                grant_id=grant.id,
                actor=people.identity(session, stem),
                is_admin=False,
                by=by,
                reason="still fixing",
                now=people.clock(),
            )
            return row.ends_at

    with pytest.raises(InvalidInput, match="at most 1h"):
        extend("bob", timedelta(hours=2))
    with pytest.raises(NotAllowed, match="only the grantee"):
        extend("dave", timedelta(minutes=30))
    assert extend("bob", timedelta(minutes=40)) == start + timedelta(minutes=160)
    with pytest.raises(InvalidInput, match=r"past the ceiling of 3h after the start .* at most 20m is left"):
        extend("bob", timedelta(minutes=30))
    assert extend("bob", timedelta(minutes=20)) == start + timedelta(hours=3)
    with pytest.raises(InvalidInput, match="already extended 2 time"):
        extend("bob", timedelta(minutes=1))
    worker.run_once()  # the target is told the new end
    (grant,) = people.grants_of("bob")
    assert grant.actual == Actual.ACTIVE and grant.extensions == 2
    people.clock.now = start + timedelta(hours=3)
    worker.run_once()
    assert "oncall" not in people.groups_of("bob")


def test_a_schedule_read_from_an_icalendar_file_drives_an_automatic_flow(
    people: People, tmp_path: object
) -> None:
    from pathlib import Path

    feed = Path(str(tmp_path)) / "oncall.ics"
    feed.write_text(
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nATTENDEE:mailto:erin@example.com\r\n"
        "DTSTART:20260105T100000Z\r\nDTEND:20260105T120000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    people.schedule({"name": "ops", "ical": str(feed)})
    people.flow(
        {
            "name": "ops-oncall",
            "trigger": "automatic",
            "requesters": [{"shift": "ops"}],
            "targets": [
                {
                    "integration": "groups",
                    "type": "group",
                    "select": {"names": ["audit"]},
                    "permissions": ["member"],
                }
            ],
        }
    )
    worker = people.worker()
    worker.run_once()
    assert "audit" not in people.groups_of("erin")
    people.clock.now = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    worker.run_once()
    assert "audit" in people.groups_of("erin")
    people.clock.now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    worker.run_once()
    assert "audit" not in people.groups_of("erin")
