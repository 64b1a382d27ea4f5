"""The JSON Schema (draft 2020-12) of every event type's webhook body, built from `event_types.py`,
and their rendering into `docs/events.md`.

`python -m sluice.events.schemas docs/events.md` rewrites the generated part of that page (everything
after its marker line); a test fails while the page differs from what this renders.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sluice.events.audit import Action
from sluice.events.event_types import DETAIL_SHAPES, EVENT_TYPES, EventType

DRAFT = "https://json-schema.org/draft/2020-12/schema"
MARKER = (
    "<!-- generated from src/sluice/events/event_types.py by `python -m sluice.events.schemas`; "
    "edit there -->"
)


def event_schema(action: Action) -> dict[str, Any]:
    """The JSON Schema of the body a webhook receives for one event type."""
    entry = EVENT_TYPES[action]
    keys = [*entry.required, *entry.optional, "via"]
    details: dict[str, Any] = {
        "type": "object",
        "properties": {key: DETAIL_SHAPES[key] for key in dict.fromkeys(keys)},
        "required": list(entry.required),
        "additionalProperties": False,
    }
    subject_type: dict[str, Any] = {"type": "string"}
    if entry.subject:
        subject_type["enum"] = list(entry.subject)
    return {
        "$schema": DRAFT,
        "title": action.value,
        "description": entry.summary,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "additionalProperties": False,
        "properties": {
            "type": {"const": action.value},
            "timestamp": {"type": "string", "format": "date-time", "description": "when it happened"},
            "data": {
                "type": "object",
                "required": ["event_id", "actor", "subject", "reason", "details"],
                "additionalProperties": False,
                "properties": {
                    "event_id": {"type": "integer", "description": "the audit event's id"},
                    "actor": {"type": "string", "description": "who acted: an email, or sluice"},
                    "subject": {
                        "type": "object",
                        "required": ["type", "id"],
                        "additionalProperties": False,
                        "properties": {"type": subject_type, "id": {"type": "string"}},
                    },
                    "reason": {"type": ["string", "null"], "description": "why, in words"},
                    "details": details,
                },
            },
        },
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    return {action.value: event_schema(action) for action in sorted(EVENT_TYPES, key=str)}


def _shape_words(shape: dict[str, Any]) -> str:
    if "anyOf" in shape:
        return " or ".join(_shape_words(part) for part in shape["anyOf"])
    kinds = shape["type"] if isinstance(shape["type"], list) else [shape["type"]]
    words = []
    for kind in kinds:
        if kind == "array":
            words.append(f"array of {shape['items']['type']}")
        elif kind == "string" and shape.get("format") == "date-time":
            words.append("date-time")
        else:
            words.append(kind)
    return " or ".join(words)


def _section(action: Action, entry: EventType) -> list[str]:
    subjects = ", ".join(f"`{s}`" for s in entry.subject) or "any"
    lines = [f"### `{action.value}`", "", entry.summary, "", f"Subject type: {subjects}.", ""]
    keys = [*entry.required, *entry.optional]
    if keys:
        lines += ["| detail | required | type | meaning |", "|---|---|---|---|"]
        for key in keys:
            shape = DETAIL_SHAPES[key]
            needed = "yes" if key in entry.required else "no"
            lines.append(f"| `{key}` | {needed} | {_shape_words(shape)} | {shape['description']} |")
    else:
        lines.append("No details beyond `via`.")
    schema = compact_json(event_schema(action))
    lines += [
        "",
        "<details><summary>JSON Schema</summary>",
        "",
        "```json",
        schema,
        "```",
        "",
        "</details>",
        "",
    ]
    return lines


def compact_json(value: Any, indent: str = "", width: int = 100) -> str:
    """JSON with a value on one line where it fits in `width`, else one member a line."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + len(flat) <= width or not isinstance(value, dict | list) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        parts = [
            f"{inner}{json.dumps(k)}: {compact_json(v, inner, width).lstrip()}" for k, v in value.items()
        ]
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    parts = [inner + compact_json(v, inner, width) for v in value]
    return "[\n" + ",\n".join(parts) + "\n" + indent + "]"


def render() -> str:
    """The generated part of `docs/events.md`: one section per event type, in name order."""
    lines = [MARKER, "", "## Event types", ""]
    lines += [f"- [`{a.value}`](#{a.value.replace('.', '')})" for a in _ordered()]
    lines.append("")
    for action in _ordered():
        lines += _section(action, EVENT_TYPES[action])
    return "\n".join(lines).rstrip() + "\n"


def _ordered() -> list[Action]:
    return sorted(EVENT_TYPES, key=lambda action: action.value)


def rewrite(page: Path) -> None:
    """Replace everything from the marker line on with what `render` makes."""
    text = page.read_text()
    head = text.split(MARKER, 1)[0]
    page.write_text(head + render())


if __name__ == "__main__":
    rewrite(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/events.md"))
