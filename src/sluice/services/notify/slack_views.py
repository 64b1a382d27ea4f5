"""The Slack app's modals: the reason asked for a rejection, and the request form `/sluice` opens
(its resource search is answered by `/slack/options`). Texts are cut to Block Kit's limits."""

from __future__ import annotations

from typing import Any

from sluice.services.notify.slack_blocks import (
    MAX_OPTION_TEXT,
    MAX_OPTION_VALUE,
    MAX_PRIVATE_METADATA,
    MAX_VIEW_TITLE,
    REJECT_VIEW,
    REQUEST_VIEW,
    Block,
    clip,
    plain,
)


def reject_modal(request_id: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": clip(request_id, MAX_PRIVATE_METADATA),
        "title": plain("Reject request", MAX_VIEW_TITLE),
        "submit": plain("Reject", MAX_VIEW_TITLE),
        "close": plain("Cancel", MAX_VIEW_TITLE),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why is it rejected?", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": True,
                    "max_length": 2000,
                },
            }
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
