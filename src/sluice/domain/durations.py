"""Durations as people write them: `30s`, `15m`, `4h`, `2d`, or combined `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

from sluice.domain.errors import InvalidInput

_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# A duration as the API takes one, written as a JSON Schema pattern (ECMA-262 and Python read it alike):
# a bare number of seconds or parts like `1h30m`, at least one part longer than zero, each number at
# most 8 significant digits. Within the API's 40 characters that stays below any clock's limit
# (4 parts of 99,999,999 days), so every text the pattern admits parses.
_ANY_NUMBER = "0*[0-9]{1,8}"
_POSITIVE_NUMBER = "0*[1-9][0-9]{0,7}"
_UNIT = "[smhdSMHD]"
DURATION_PATTERN = (
    rf"^(?:{_POSITIVE_NUMBER}"
    rf"|(?:{_ANY_NUMBER}{_UNIT})*{_POSITIVE_NUMBER}{_UNIT}(?:{_ANY_NUMBER}{_UNIT})*)$"
)
DURATION_WORDS = "a duration longer than zero, like '30s', '15m', '4h', '2d' or '1h30m'"


def parse_duration(text: str | int) -> timedelta:
    """Parse `30s`, `15m`, `4h`, `2d`, `1h30m` (or a bare number of seconds) into a timedelta."""
    if isinstance(text, bool):
        raise InvalidInput(f"duration must be text like '15m' or '4h', not {text!r}")
    if isinstance(text, int):
        seconds = text
    else:
        cleaned = text.strip().lower()
        if cleaned.isdigit():
            seconds = int(cleaned)
        else:
            parts = _PART.findall(cleaned)
            if not parts or "".join(n + u for n, u in parts) != cleaned:
                raise InvalidInput(
                    f"duration {text!r} is not understood; write it like '30s', '15m', '4h', '2d' or '1h30m'"
                )
            seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise InvalidInput(f"duration {text!r} must be longer than zero")
    try:
        return timedelta(seconds=seconds)
    except OverflowError as exc:  # beyond what any clock can count; not a crash
        raise InvalidInput(f"duration {text!r} is far too long") from exc


def checked_duration(value: str) -> str:
    """`value` unchanged when it is a duration; a ValueError saying why not otherwise, for a field
    validator (pydantic reports a ValueError at the field, where `InvalidInput` would escape it)."""
    try:
        parse_duration(value)
    except Exception as exc:
        raise ValueError(str(exc)) from exc
    return value


def format_duration(delta: timedelta) -> str:
    """The shortest exact form: 8h, 90m -> 1h30m, 45s."""
    seconds = int(delta.total_seconds())
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"
