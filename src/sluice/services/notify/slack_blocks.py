"""Block Kit for Sluice's Slack messages and modals.

Everything a person typed or a directory holds (names, reasons, resource paths) is escaped before it
goes into `mrkdwn`: `&`, `<` and `>` become entities, so `<!channel>` or a link cannot be smuggled in,
and the formatting characters are split with a zero-width space so a name cannot turn a message bold
or into code. Every text is cut to the limit Slack sets for where it goes (a longer one makes Slack
refuse the whole message with `invalid_blocks`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sluice.services.notify.channels import Notice, Subject
from sluice.services.notify.wording import outcome

Block = dict[str, Any]

APPROVE = "sluice_approve"
REJECT = "sluice_reject"
EXTEND = "sluice_extend"
REVIEW = "sluice_review"
REJECT_VIEW = "sluice_reject_reason"
REVIEW_VIEW = "sluice_review_outcome"
REQUEST_VIEW = "sluice_request"

# Slack's limits (api.slack.com/reference/block-kit): what a block or an element may hold.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 4000
MAX_VIEW_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
SHOWN_RESOURCES = 20
MAX_PATH_SHOWN = 300

_ZWSP = "\u200b"
_ASKING_TOPICS = {
    "request.created": "asks for access",
    "request.reminder": "is still waiting for a decision",
    "request.escalated": "needs a decision (escalated)",
    "request.break_glass": "used break-glass access",
}


def escape(text: str) -> str:
    """`text` shown literally inside `mrkdwn`."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for mark in "*_~`":
        text = text.replace(mark, f"{_ZWSP}{mark}{_ZWSP}")
    return text


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": False}


def _mrkdwn(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _resources(subject: Subject) -> str:
    """As many paths as fit in one section (each cut to a readable length), then how many more."""
    room = MAX_SECTION_TEXT - 100  # the heading and the "… and N more" line
    lines: list[str] = []
    for path in subject.resources[:SHOWN_RESOURCES]:
        line = f"• {escape(clip(path, MAX_PATH_SHOWN))}"
        if sum(len(x) + 1 for x in lines) + len(line) > room:
            break
        lines.append(line)
    more = subject.resource_count - len(lines)
    if more > 0:
        lines.append(f"… and {more} more")
    return "\n".join(lines) or "—"


def _facts(subject: Subject) -> Block:
    pairs = [
        ("Requester", f"{subject.requester_name} ({subject.requester_email})"),
        ("Permission", subject.permission),
        ("For", subject.duration or "—"),
        ("Flow", subject.flow or "—"),
        ("State", subject.state),
    ]
    if subject.ends_at is not None:
        pairs.append(("Ends", when(subject.ends_at)))
    fields = [_mrkdwn(f"*{label}*\n{escape(value)}", MAX_FIELD_TEXT) for label, value in pairs]
    return {"type": "section", "fields": fields[:10]}


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id,
        "value": clip(value, MAX_BUTTON_VALUE),
    }
    if style:
        button["style"] = style
    return button


def _link(subject: Subject) -> list[Block]:
    if not subject.portal_url:
        return []
    return [{"type": "context", "elements": [_mrkdwn(f"<{subject.portal_url}|Open in Sluice>", 3000)]}]


def _headline(notice: Notice) -> str:
    subject = notice.subject
    who = f"*{escape(subject.requester_name)}*"
    by = escape(subject.decided_by or "someone")
    because = f": {escape(subject.decision_reason)}" if subject.decision_reason else ""
    mine = notice.role == "requester"
    topic = notice.topic
    if topic in _ASKING_TOPICS:
        return f"{who} {_ASKING_TOPICS[topic]}"
    if topic == "request.approved":
        return f"{'Your request' if mine else 'Request'} was *approved* by {by}{because}"
    if topic == "request.rejected":
        return f"{'Your request' if mine else 'Request'} was *rejected* by {by}{because}"
    if topic == "request.cancelled":
        return f"Request was *cancelled* by {by}{because}"
    if topic == "request.expired":
        return "Request *expired* without a decision"
    if topic == "request.break_glass_reviewed":
        return f"{'Your break-glass access' if mine else f'Break-glass access of {who}'} {_reviewed(subject)}"
    if topic == "grant.activated":
        return f"Your access is *active* until {when(subject.ends_at)}"
    if topic == "grant.ending_soon":
        return f"Your access *ends soon*, at {when(subject.ends_at)}"
    if topic in ("grant.expired", "grant.revoked", "grant.no_longer_eligible"):
        how = escape(notice.reason or topic.removeprefix("grant.").replace("_", " "))
        return f"Your access has *ended* ({how})"
    if topic == "grant.revoke_failed":
        return f"Removing access of {who} is *failing*; Sluice keeps trying"
    return escape(topic)


def _reviewed(subject: Subject) -> str:
    """Who reviewed, what they decided and why, e.g. `was *reviewed* by Carol: access ended: …`."""
    because = f": {escape(subject.review_reason)}" if subject.review_reason else ""
    decided = escape(outcome(subject.review_outcome))
    return f"was *reviewed* by {escape(subject.reviewed_by or 'someone')}: {decided}{because}"


def _buttons(notice: Notice) -> list[Block]:
    """The actions a message offers: decide a request asked, review a break-glass one not reviewed
    yet, extend a grant that ends soon."""
    subject, topic = notice.subject, notice.topic
    if topic in _ASKING_TOPICS and topic != "request.break_glass" and subject.request_id:
        decide = [
            _button("Approve", APPROVE, subject.request_id, "primary"),
            _button("Reject", REJECT, subject.request_id, "danger"),
        ]
        return [_actions(f"decide:{subject.request_id}", decide)]
    if topic == "request.break_glass" and subject.request_id and subject.reviewed_by is None:
        return [_actions(f"review:{subject.request_id}", [_button("Review", REVIEW, subject.request_id)])]
    if topic == "grant.ending_soon" and subject.grant_id:
        extend = [_button("Extend", EXTEND, subject.grant_id, "primary")]
        return [_actions(f"extend:{subject.grant_id}", extend)]
    return []


def _actions(block_id: str, elements: list[dict[str, Any]]) -> Block:
    return {"type": "actions", "block_id": clip(block_id, 255), "elements": elements}


def message(notice: Notice) -> tuple[str, list[Block]]:
    """A new message about `notice`: fallback text and blocks, with the buttons the topic calls for."""
    subject = notice.subject
    headline = _headline(notice)
    blocks: list[Block] = [_section(headline), _facts(subject)]
    blocks.append(_section(f"*Resources*\n{_resources(subject)}"))
    if subject.reason:
        blocks.append(_section(f"*Reason*\n{escape(subject.reason)}"))
    if notice.topic == "request.break_glass" and subject.reviewed_by is not None:  # sent late
        blocks.append(_section(f"This request {_reviewed(subject)}"))
    blocks += _buttons(notice)
    blocks += _link(subject)
    return clip(headline, MAX_FALLBACK_TEXT), blocks[:MAX_BLOCKS]


def settled(notice: Notice) -> tuple[str, list[Block]]:
    """The same message once the request is decided (or its break-glass reviewed): who did it and
    how, and no buttons left to press."""
    text, blocks = message(notice)
    return text, [b for b in blocks if b["type"] != "actions"]
