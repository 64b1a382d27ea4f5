"""Text from outside (API bodies and parameters, the config file) that every store and every reader
accepts: no NUL character (PostgreSQL refuses it), no unpaired surrogate (no UTF-8 encoding exists
for one, so a stored one breaks every later read), and a bounded length.

`Text(max_length=…)` is the one annotation for that: `Annotated[str, Text(max_length=200)]`. It
validates with a message a person can act on and shows in the JSON schema as `maxLength` (and
`minLength`) plus a `pattern` that excludes the refused characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

# JSON Schema (ECMA-262, code point semantics): any text without U+0000 or a lone surrogate.
STORABLE_PATTERN = r"^[^\u0000\ud800-\udfff]*$"

# An email address as the directory takes one (services/directory.py): one @ with no space on either
# side, after surrounding space is trimmed, and no NUL. (Lone surrogates are refused too, but a surrogate
# range in a pattern is no valid regex to many schema tools, which then drop the whole pattern.)
# What Python trims and `\s` matches beyond ECMA's `\s` (U+001C..U+001F, U+0085) is spelled out.
_SPACE = r"\s\u001c-\u001f\u0085"
EMAIL_PATTERN = rf"^[{_SPACE}]*[^@{_SPACE}\u0000]+@[^@{_SPACE}\u0000]+[{_SPACE}]*$"
MAX_EMAIL = 254  # the longest address SMTP can deliver to (RFC 5321 path limit, less the brackets)
MAX_NAME = 200
MAX_DESCRIPTION = 2000


INVALID_UNICODE = "must be valid Unicode text: it holds half of a surrogate pair"


def storable_text(value: str) -> str:
    """`value` unchanged, or ValueError saying which character no store takes."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (U+0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{INVALID_UNICODE} (U+{ord(value[exc.start]):04X}, character {exc.start + 1})"
        ) from exc
    return value


def _matching(pattern: re.Pattern[str], words: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        # The whole text, as a JSON Schema validator reads `^…$`: Python's `$` also matches before a
        # final newline, which the schema's pattern does not admit.
        if not pattern.fullmatch(value):
            shown = repr(value) if len(value) <= 60 else f"{value[:57]!r}…"
            raise ValueError(f"{shown} is not {words}")
        return value

    return check


@dataclass(frozen=True)
class Text:
    """Annotation for a string field: storable text of `min_length`..`max_length` characters."""

    max_length: int
    min_length: int = 0
    # A stricter pattern than storable text (it must exclude what STORABLE_PATTERN excludes).
    pattern: str | None = None
    pattern_words: str = "in the expected form"  # what a value that fails `pattern` is not

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = core_schema.str_schema(min_length=self.min_length or None, max_length=self.max_length)
        if self.pattern is None:
            return core_schema.no_info_after_validator_function(storable_text, inner)
        return core_schema.no_info_after_validator_function(
            _matching(re.compile(self.pattern), self.pattern_words),
            core_schema.no_info_after_validator_function(storable_text, inner),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern or STORABLE_PATTERN
        return json_schema


def text_keys(json_schema: dict[str, Any]) -> None:
    """`json_schema_extra` for a mapping whose keys are `Text`: pydantic writes the key pattern as
    `patternProperties`, which leaves keys that do not match it unconstrained (and is no valid regex key
    for some validators); the rule belongs in `propertyNames`, the values in `additionalProperties`."""
    patterns = json_schema.pop("patternProperties", None)
    if not patterns:
        return
    ((pattern, values),) = patterns.items()
    json_schema["propertyNames"] = {**json_schema.get("propertyNames", {}), "pattern": pattern}
    json_schema["additionalProperties"] = values


Name = Annotated[str, Text(max_length=MAX_NAME, min_length=1)]
PersonName = Annotated[str, Text(max_length=MAX_NAME)]  # a display name; may be left empty
Description = Annotated[str, Text(max_length=MAX_DESCRIPTION)]
Email = Annotated[
    str, Text(max_length=MAX_EMAIL, min_length=1, pattern=EMAIL_PATTERN, pattern_words="an email address")
]
Token = Annotated[str, Text(max_length=120)]  # short words: durations, clock times, zones, types, permissions
Value = Annotated[str, Text(max_length=500)]  # attribute and tag values
Reference = Annotated[str, Text(max_length=1000)]  # resource paths and ids, tag rules, parents
QueryText = Annotated[str, Text(max_length=4000, min_length=1)]

MAX_ITEMS = 1000  # entries in any one list a caller sends, unless a field says otherwise


def too_many_entries(error: Mapping[str, Any]) -> str | None:
    """The words for a pydantic `too_long` error on a list or mapping; None for any other error."""
    ctx = error.get("ctx") or {}
    if error.get("type") != "too_long" or "max_length" not in ctx:
        return None
    given = error.get("input")
    count = ctx.get("actual_length") or (len(given) if isinstance(given, Sized) else "too many")
    return f"holds {count} entries; at most {ctx['max_length']} are allowed"
