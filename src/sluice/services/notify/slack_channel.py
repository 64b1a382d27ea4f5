"""The Slack channel: direct messages to people (found by email), posts to a flow's channels, and
updates of what was posted once a request is decided.

A person's Slack user id and the id of their direct-message conversation are cached in memory: both
are stable, and looking them up on every notice would spend Slack's rate limit for nothing."""

from __future__ import annotations

import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from sluice.services.notify import slack_blocks
from sluice.services.notify.channels import SETTLED_TOPICS, ChannelError, Notice

# Errors that another try may cure; anything else (invalid_auth, channel_not_found, users_not_found,
# invalid_blocks, …) fails the same way every time.
_PASSING = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# An earlier message that is gone or may no longer be edited is left as it is.
_GONE = frozenset({"message_not_found", "cant_update_message", "channel_not_found", "is_archived"})


def slack_error(exc: SlackApiError) -> ChannelError:
    status = exc.response.status_code
    error = str(exc.response.get("error") or f"HTTP {status}")
    retryable = status == 429 or status >= 500 or error in _PASSING
    return ChannelError(f"Slack refused: {error}", retryable=retryable)


def _error_of(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or "")


class SlackChannel:
    name = "slack"

    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._user_ids: dict[str, str] = {}
        self._dm_ids: dict[str, str] = {}

    def send(self, notice: Notice) -> str | None:
        try:
            if notice.earlier and notice.role != "requester" and notice.topic in SETTLED_TOPICS:
                return self._update(notice)
            text, blocks = slack_blocks.message(notice)
            sent = self.client.chat_postMessage(
                channel=self._where(notice), text=text, blocks=blocks, unfurl_links=False
            )
            return f"{sent['channel']}:{sent['ts']}"
        except SlackApiError as exc:
            raise slack_error(exc) from exc
        except (SlackClientError, OSError) as exc:
            raise ChannelError(f"Slack could not be reached: {exc}") from exc

    def _update(self, notice: Notice) -> str | None:
        """Every earlier message to this recipient about the request says who decided (or reviewed),
        without buttons."""
        text, blocks = slack_blocks.settled(notice)
        for reference in dict.fromkeys(notice.earlier):
            channel, _, ts = reference.partition(":")
            try:
                self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
            except SlackApiError as exc:
                if _error_of(exc) not in _GONE:
                    raise
        return notice.earlier[-1]

    def _where(self, notice: Notice) -> str:
        if notice.destination:
            return notice.destination.removeprefix("slack:")
        if not notice.recipient_email:
            raise ChannelError("the notice names neither a person nor a channel", retryable=False)
        return self.direct_conversation(notice.recipient_email)

    def user_id(self, email: str) -> str:
        key = email.strip().lower()
        with self._lock:
            known = self._user_ids.get(key)
        if known:
            return known
        try:
            found: Any = self.client.users_lookupByEmail(email=key)
        except SlackApiError as exc:
            if _error_of(exc) == "users_not_found":
                raise ChannelError(f"no Slack user has the email {key}", retryable=False) from exc
            raise
        user_id = str(found["user"]["id"])
        with self._lock:
            self._user_ids[key] = user_id
        return user_id

    def direct_conversation(self, email: str) -> str:
        user_id = self.user_id(email)
        with self._lock:
            known = self._dm_ids.get(user_id)
        if known:
            return known
        opened: Any = self.client.conversations_open(users=user_id)
        channel_id = str(opened["channel"]["id"])
        with self._lock:
            self._dm_ids[user_id] = channel_id
        return channel_id
