"""The Slack app's modals: the reason asked for a rejection, the outcome and reason of a break-glass
review, and the request form `/sluice` opens (its resource search is answered by `/slack/options`).
Texts are cut to Block Kit's limits."""

from __future__ import annotations

from typing import Any

from sluice.services.notify.slack_blocks import (
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_PRIVATE_METADATA,
    MAX_SECTION_TEXT,
    MAX_VIEW_TITLE,
    REJECT_VIEW,
    REQUEST_VIEW,
    REVIEW_VIEW,
    Block,
    clip,
    plain,
)

# What a reviewer chooses between, in the words of the form; the values are the review's outcomes.
REVIEW_CHOICES = {"ok": "Keep the access: the emergency was real", "revoke": "End the access now"}


def reject_modal(request_id: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": clip(request_id, MAX_PRIVATE_METADATA),
        "title": plain("Reject request", MAX_VIEW_TITLE),
        "submit": plain("Reject", MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "blocks": [_reason_input("Why is it rejected?")],
    }


def _reason_input(label: str) -> Block:
    """A required, multi-line reason (block and action `reason`)."""
    return {
        "type": "input",
        "block_id": "reason",
        "label": plain(label, 2000),
        "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 2000},
    }


def review_modal(request_id: str, summary: str) -> dict[str, Any]:
    """Review a break-glass request: keep its access or end it now, and why (both required).
    `summary` says whose access to what, in plain words."""
    return {
        "type": "modal",
        "callback_id": REVIEW_VIEW,
        "private_metadata": clip(request_id, MAX_PRIVATE_METADATA),
        "title": plain("Review break-glass", MAX_VIEW_TITLE),
        "submit": plain("Review", MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "blocks": [
            {"type": "section", "text": plain(summary, MAX_SECTION_TEXT)},
            {
                "type": "input",
                "block_id": "outcome",
                "label": plain("Outcome", 2000),
                "element": {
                    "type": "radio_buttons",
                    "action_id": "outcome",
                    "options": [option(REVIEW_CHOICES[value], value) for value in REVIEW_CHOICES],
                },
            },
            _reason_input("What did the review find?"),
        ],
    }


def _text_input(block_id: str, label: str, *, hint: str, optional: bool = False) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain(label, 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": block_id,
            "max_length": 2000,
            "placeholder": plain(hint, 150),
        },
    }


def request_modal() -> dict[str, Any]:
    """`/sluice`: pick a resource and permission (searched as the person types), a duration, a reason."""
    return {
        "type": "modal",
        "callback_id": REQUEST_VIEW,
        "title": plain("Request access", MAX_VIEW_TITLE),
        "submit": plain("Request", MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": "resource",
                "label": plain("Resource and permission", 2000),
                "element": {
                    "type": "external_select",
                    "action_id": "resource",
                    "min_query_length": 0,
                    "placeholder": plain("Search what you may request", 150),
                },
            },
            _text_input("duration", "For how long", hint="e.g. 1h or 30m"),
            _text_input("reason", "Why", hint="what you need it for", optional=True),
        ],
    }


def option(label: str, value: str) -> dict[str, Any]:
    return {"text": plain(label, MAX_OPTION_TEXT), "value": clip(value, MAX_OPTION_VALUE)}
