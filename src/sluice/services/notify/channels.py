"""What a notification channel receives and implements (the core's interface, shared by every
channel): a `Notice` about one `Subject`, sent outside any transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Subject:
    """What the event is about, read once by the core."""

    request_id: str | None
    grant_id: str | None
    requester_name: str
    requester_email: str
    resources: list[str]
    resource_count: int
    permission: str
    duration: str | None
    reason: str | None
    flow: str | None
    state: str
    decided_by: str | None
    decision_reason: str | None
    ends_at: datetime | None
    break_glass: bool
    portal_url: str | None


@dataclass(frozen=True)
class Notice:
    notification_id: str
    topic: str
    event_id: int
    channel: str
    recipient_email: str | None
    recipient_identity_id: str | None
    destination: str | None
    role: str
    subject: Subject
    earlier: list[str]


class ChannelError(Exception):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> str | None: ...
