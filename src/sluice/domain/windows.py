"""Time windows on a flow: the days and hours (in a time zone) during which it grants anything, and
extension rules. A flow outside its window allows nothing; access granted inside it ends when the
window closes."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.domain.durations import checked_duration, parse_duration
from sluice.domain.text import Token

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; write an IANA name such as Europe/Paris or UTC"
        ) from exc
    return value


def parse_clock(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"time {value!r} is not HH:MM (24-hour)") from exc


class TimeWindow(_Strict):
    days: list[Token] = Field(default_factory=lambda: list(DAYS), max_length=7)
    start: Token = "00:00"
    end: Token = "24:00"
    timezone: Token = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        cleaned = [d.lower()[:3] for d in value]
        unknown = [d for d, c in zip(value, cleaned, strict=True) if c not in DAYS]
        if unknown or not value:
            raise ValueError(f"days are {', '.join(DAYS)}; got {', '.join(unknown) or 'none'}")
        return cleaned

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _ordered(self) -> TimeWindow:
        if self.start != "24:00":
            parse_clock(self.start)
        start, end = self._minutes(self.start), self._minutes(self.end)
        if end <= start:
            raise ValueError(f"the window ends at {self.end}, not after it starts at {self.start}")
        return self

    @staticmethod
    def _minutes(value: str) -> int:
        if value == "24:00":
            return 24 * 60
        clock = parse_clock(value)
        return clock.hour * 60 + clock.minute

    def _local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def contains(self, at: datetime) -> bool:
        local = self._local(at)
        minute = local.hour * 60 + local.minute
        return DAYS[local.weekday()] in self.days and self._minutes(self.start) <= minute < self._minutes(
            self.end
        )

    def closes_after(self, at: datetime) -> datetime:
        """When the window that contains `at` closes."""
        local = self._local(at)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
        closing = midnight + timedelta(minutes=self._minutes(self.end))
        return closing.replace(tzinfo=ZoneInfo(self.timezone)).astimezone(at.tzinfo)

    def describe(self) -> str:
        return f"{','.join(self.days)} {self.start}-{self.end} {self.timezone}"


class Extensions(_Strict):
    """How a grant may be made longer: at most `max_count` times, by at most `length` each time, never
    past `ceiling` after it started; with or without approval."""

    max_count: int = Field(default=1, ge=0, le=100)
    length: Token = "1h"
    ceiling: Token = "24h"
    approval_required: bool = False

    @field_validator("length", "ceiling")
    @classmethod
    def _duration(cls, value: str) -> str:
        return checked_duration(value)

    @model_validator(mode="after")
    def _length_under_ceiling(self) -> Extensions:
        if parse_duration(self.length) > parse_duration(self.ceiling):
            raise ValueError(f"an extension of {self.length} is longer than the ceiling {self.ceiling}")
        return self
