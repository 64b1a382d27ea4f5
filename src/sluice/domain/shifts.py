"""On-call schedules: who is on call for a schedule at a given moment, and when that next changes.

A schedule is a rotation declared in config (members in order, a rotation length, the handoff time of
day and time zone, a first day) with overrides on top, or a list of shifts read from an iCalendar feed.
An override replaces the rotation for its span. Rotations count in wall-clock time of their zone, so a
daily handoff at 09:00 stays at 09:00 across daylight-saving changes.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.domain.durations import checked_duration, parse_duration
from sluice.domain.text import MAX_ITEMS, Email, Text, Token
from sluice.domain.windows import check_timezone, parse_clock


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Shift:
    email: str
    start: datetime
    end: datetime


class Override(_Strict):
    user: Email
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override times carry a zone, e.g. 2026-01-05T09:00:00Z")
        if self.end <= self.start:
            raise ValueError(f"override for {self.user} ends ({self.end}) before it starts ({self.start})")
        return self


class ScheduleSpec(_Strict):
    name: Annotated[str, Text(max_length=120, min_length=1)]
    members: list[Email] = Field(default_factory=list, max_length=MAX_ITEMS)
    rotation: Token = "7d"
    handoff: Token = "09:00"
    timezone: Token = "UTC"
    start: date = date(2026, 1, 5)
    overrides: list[Override] = Field(default_factory=list, max_length=MAX_ITEMS)
    ical: str | None = None  # a file path or an http(s) URL of an iCalendar feed

    @field_validator("rotation")
    @classmethod
    def _rotation(cls, value: str) -> str:
        return checked_duration(value)

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("members")
    @classmethod
    def _members(cls, value: list[str]) -> list[str]:
        return [m.strip().lower() for m in value]

    @model_validator(mode="after")
    def _consistent(self) -> ScheduleSpec:
        if not self.members and not self.ical:
            raise ValueError("a schedule lists members (a rotation) or names an ical feed")
        spans = sorted(self.overrides, key=lambda o: o.start)
        for before, after in itertools.pairwise(spans):
            if after.start < before.end:
                raise ValueError(
                    f"overrides overlap: {before.user} until {before.end.isoformat()} and "
                    f"{after.user} from {after.start.isoformat()}"
                )
        return self

    def _anchor(self) -> datetime:
        return datetime.combine(self.start, parse_clock(self.handoff))  # naive wall-clock time

    def _rotation_at(self, at: datetime) -> Shift | None:
        if not self.members:
            return None
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone).replace(tzinfo=None)
        anchor = self._anchor()
        if local < anchor:
            return None
        length = parse_duration(self.rotation)
        turn = (local - anchor) // length
        begins = anchor + turn * length
        return Shift(
            self.members[turn % len(self.members)],
            begins.replace(tzinfo=zone).astimezone(UTC),
            (begins + length).replace(tzinfo=zone).astimezone(UTC),
        )

    def on_call(self, at: datetime, feed: list[Shift] | None = None) -> list[str]:
        """Emails of who is on call at `at`: an override if one covers it, else the feed's shifts, else
        the rotation."""
        for override in self.overrides:
            if override.start <= at < override.end:
                return [override.user.lower()]
        if feed is not None:
            return sorted({s.email for s in feed if s.start <= at < s.end})
        shift = self._rotation_at(at)
        return [shift.email] if shift else []

    def next_change(self, after: datetime, feed: list[Shift] | None = None) -> datetime | None:
        """The first moment after `after` at which who is on call may change."""
        moments = [t for o in self.overrides for t in (o.start, o.end) if t > after]
        if feed is not None:
            moments += [t for s in feed for t in (s.start, s.end) if t > after]
        elif self.members:
            shift = self._rotation_at(after)
            if shift is not None:
                moments.append(shift.end)
            else:
                anchor = self._anchor().replace(tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)
                moments.append(anchor)
        return min(moments) if moments else None


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _ical_time(params: str, value: str) -> datetime:
    tzid = next((p.split("=", 1)[1] for p in params.split(";") if p.upper().startswith("TZID=")), None)
    if len(value) == 8:  # a whole day
        return datetime.strptime(value, "%Y%m%d").replace(tzinfo=ZoneInfo(tzid) if tzid else UTC)
    if value.endswith("Z"):
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=ZoneInfo(tzid) if tzid else UTC)


def parse_ical(text: str) -> list[Shift]:
    """Shifts from an iCalendar feed as on-call services export it: one VEVENT per shift, the person
    named by an ATTENDEE (mailto:) or by an email address in the SUMMARY or DESCRIPTION."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    shifts: list[Shift] = []
    event: dict[str, tuple[str, str]] | None = None
    for line in unfolded.splitlines():
        if line.upper() == "BEGIN:VEVENT":
            event = {}
            continue
        if line.upper() == "END:VEVENT" and event is not None:
            who = event.get("ATTENDEE", ("", ""))[1].removeprefix("mailto:").removeprefix("MAILTO:")
            if not _EMAIL.fullmatch(who):
                found = _EMAIL.search(
                    event.get("SUMMARY", ("", ""))[1] + " " + event.get("DESCRIPTION", ("", ""))[1]
                )
                who = found.group(0) if found else ""
            if who and "DTSTART" in event and "DTEND" in event:
                start = _ical_time(*event["DTSTART"])
                end = _ical_time(*event["DTEND"])
                if end > start:
                    shifts.append(Shift(who.lower(), start.astimezone(UTC), end.astimezone(UTC)))
            event = None
            continue
        if event is None or ":" not in line:
            continue
        head, value = line.split(":", 1)
        name, _, params = head.partition(";")
        event.setdefault(name.upper(), (params, value.strip()))
    return shifts
