"""What a notification says, in words, whatever the channel: a headline for the event as the recipient
sees it, and the facts (what, who, why, how long, state). Channels lay these out in their own format
and escape them there; nothing here is markup."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.services.notify.channels import Notice, Subject

MAX_TEXT = 500  # a reason or name longer than this is cut in a message (the portal has it whole)
# What a break-glass review decided, in words: the access stays, or it ends at once.
REVIEW_OUTCOMES = {"ok": "access kept", "revoke": "access ended"}


@dataclass(frozen=True)
class Wording:
    headline: str
    facts: list[tuple[str, str]]
    action: str | None  # what the link invites to do ("Review the request"), None: no link
    link: str | None


def short(text: str | None, limit: int = MAX_TEXT) -> str:
    """One line of at most `limit` characters: control characters become spaces."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in (text or "")).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _what(subject: Subject) -> str:
    first = ", ".join(subject.resources[:3])
    more = subject.resource_count - min(3, len(subject.resources))
    where = f"{first} and {more} more" if more > 0 else first
    return f"{subject.permission} on {where}" if subject.permission else where


def _requester(subject: Subject) -> str:
    return short(subject.requester_name or subject.requester_email, 120)


def outcome(review_outcome: str | None) -> str:
    return REVIEW_OUTCOMES.get(review_outcome or "", short(review_outcome or "reviewed", 40))


def _reviewer(subject: Subject) -> str:
    return f" by {short(subject.reviewed_by, 120)}" if subject.reviewed_by else ""


def headline(notice: Notice) -> str:
    s, topic, yours = notice.subject, notice.topic, notice.role == "requester"
    who, what = _requester(s), _what(s)
    by = f" by {short(s.decided_by, 120)}" if s.decided_by and s.decided_by != "sluice" else ""
    whose = "Your request" if yours else f"{who}'s request"
    whose_access = "your access" if yours else f"{who}'s access"
    lines = {
        "request.created": f"{who} asks for {what}",
        "request.escalated": f"{who} asks for {what}: nobody decided in time, so you are asked too",
        "request.reminder": f"Reminder: {who}'s request for {what} still waits for a decision",
        "request.break_glass": f"Break-glass: {who} took {what} without approval",
        "request.break_glass_reviewed": (
            f"Break-glass: {whose_access} to {what} was reviewed{_reviewer(s)}: {outcome(s.review_outcome)}"
        ),
        "request.approved": f"{whose} for {what} was approved{by}",
        "request.rejected": f"{whose} for {what} was rejected{by}",
        "request.cancelled": f"{whose} for {what} was cancelled",
        "request.expired": f"{whose} for {what} expired without a decision",
        "grant.activated": f"Your access to {what} is active",
        "grant.ending_soon": f"Your access to {what} ends soon",
        "grant.expired": f"Your access to {what} has ended",
        "grant.revoked": f"Your access to {what} was revoked",
        "grant.no_longer_eligible": f"Your access to {what} was ended: you are no longer eligible",
        "grant.revoke_failed": f"Revoking {who}'s access to {what} keeps failing",
    }
    return short(lines.get(topic, f"{topic}: {who}, {what}"), 300)


def facts(notice: Notice) -> list[tuple[str, str]]:
    s = notice.subject
    found: list[tuple[str, str]] = [
        ("Requested by", f"{_requester(s)} <{s.requester_email}>"),
        ("Access", _what(s)),
    ]
    if s.duration:
        found.append(("For", s.duration))
    if s.reason:
        found.append(("Reason", short(s.reason)))
    if s.flow:
        found.append(("Flow", short(s.flow, 120)))
    found.append(("State", s.state))
    if s.decided_by and s.decided_by != "sluice":
        found.append(("Decided by", short(s.decided_by, 120)))
    if s.decision_reason:
        found.append(("Decision reason", short(s.decision_reason)))
    if s.reviewed_by:
        found.append(("Reviewed by", short(s.reviewed_by, 120)))
    if s.review_reason:
        found.append(("Review", short(s.review_reason)))
    if s.ends_at is not None:
        found.append(("Ends", f"{s.ends_at:%Y-%m-%d %H:%M} UTC"))
    if notice.reason and notice.topic.startswith("grant."):
        found.append(("Why", short(notice.reason)))
    if s.resource_count > len(s.resources[:3]):
        found.append(
            ("Resources", ", ".join(s.resources) + ("…" if s.resource_count > len(s.resources) else ""))
        )
    return found


def wording(notice: Notice) -> Wording:
    link = notice.subject.portal_url
    unreviewed = notice.topic == "request.break_glass" and notice.subject.reviewed_by is None
    asks = notice.role in ("approver", "channel") and (
        notice.topic in ("request.created", "request.escalated", "request.reminder") or unreviewed
    )
    action = "Review the request" if asks else "Open in Sluice"
    return Wording(headline(notice), facts(notice), action if link else None, link)
