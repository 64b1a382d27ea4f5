"""The Microsoft Teams channel: a post to a channel through a Teams Workflows webhook ("When a Teams
webhook request is received" → post the card), carrying an Adaptive Card with what is asked, by whom,
why, for how long and a link to the portal. Outbound only: the card's one action opens the portal, no
button calls back.

Destinations are named in `SLUICE_TEAMS_WEBHOOKS` (`db-team=TEAMS_DB_URL,ops=TEAMS_OPS_URL`): each
name maps to the environment variable that holds its Workflows URL (the URL carries its own signature,
so it is a secret and never goes into the config file). A flow posts to one with
`notify: {destinations: ["teams:db-team"]}`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from sluice.services.notify.channels import ChannelError, Notice
from sluice.services.notify.wording import wording

CARD_VERSION = "1.4"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MARKDOWN = re.compile(r"([\\*_\[\]()`~>#])")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def destinations_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """Name -> Workflows URL from `SLUICE_TEAMS_WEBHOOKS`; ValueError naming what is wrong."""
    found: dict[str, str] = {}
    for entry in (e.strip() for e in env.get("SLUICE_TEAMS_WEBHOOKS", "").split(",")):
        if not entry:
            continue
        name, _, variable = (part.strip() for part in entry.partition("="))
        if not _NAME.match(name) or not variable:
            raise ValueError(f"SLUICE_TEAMS_WEBHOOKS: write NAME=ENV_VAR, not {entry!r}")
        if name in found:
            raise ValueError(f"SLUICE_TEAMS_WEBHOOKS names {name!r} twice")
        url = env.get(variable, "").strip()
        if not url:
            raise ValueError(f"SLUICE_TEAMS_WEBHOOKS: {variable} (the URL of {name!r}) is not set")
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
            raise ValueError(f"SLUICE_TEAMS_WEBHOOKS: {variable} must hold an https:// URL")
        found[name] = url
    return found


def plain(text: str) -> str:
    """Text as Teams shows it literally: markdown characters escaped, so a hostile name or reason
    cannot turn into a link or formatting."""
    return _MARKDOWN.sub(r"\\\1", text)


def card(notice: Notice) -> dict[str, Any]:
    """The Workflows message: one attachment holding the Adaptive Card."""
    words = wording(notice)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": plain(words.headline),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {
            "type": "FactSet",
            "facts": [{"title": plain(label), "value": plain(value)} for label, value in words.facts],
        },
    ]
    content: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if words.link and words.action:
        content["actions"] = [{"type": "Action.OpenUrl", "title": words.action, "url": words.link}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": content}
        ],
    }


class TeamsChannel:
    name = "teams"

    def __init__(
        self,
        destinations: Mapping[str, str],
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.destinations = dict(destinations)
        self.timeout_seconds = timeout_seconds
        self._transport = transport

    def send(self, notice: Notice) -> str | None:
        url = self.destinations.get(notice.destination or "")
        if url is None:
            raise ChannelError(
                f"no Teams destination {notice.destination!r}: name it in SLUICE_TEAMS_WEBHOOKS",
                retryable=False,
            )
        body = json.dumps(card(notice)).encode()
        headers = {"Content-Type": "application/json", "X-Sluice-Notification": notice.notification_id}
        try:
            with httpx.Client(timeout=self.timeout_seconds, transport=self._transport) as client:
                answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ChannelError(f"Teams {notice.destination}: {type(exc).__name__}: {exc}") from exc
        if answer.is_success:
            return None  # a Workflows webhook answers 202 and names no message
        retryable = answer.status_code == 429 or answer.status_code >= 500 or answer.status_code == 408
        raise ChannelError(
            f"Teams {notice.destination}: HTTP {answer.status_code}: {answer.text[:200]}", retryable=retryable
        )
