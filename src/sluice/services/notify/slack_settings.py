"""The Slack app's settings, read once at start: `SLUICE_SLACK_BOT_TOKEN` (the bot's `xoxb-` token),
`SLUICE_SLACK_SIGNING_SECRET` (checks what Slack sends to Sluice) and `SLUICE_SLACK_API_URL` (the Web
API's base URL, `https://slack.com/api/` unless a proxy or a test stand-in answers instead)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from slack_sdk import WebClient

DEFAULT_API_URL = "https://slack.com/api/"
# Slack answers in well under a second; a hung connection must not hold a notification lease long.
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None = None
    api_url: str = DEFAULT_API_URL

    def __repr__(self) -> str:  # the token and the secret never reach a log line
        return f"SlackSettings(api_url={self.api_url!r})"

    @classmethod
    def from_env(cls) -> SlackSettings | None:
        """None when no bot token is set: Slack is then simply not used."""
        token = os.environ.get("SLUICE_SLACK_BOT_TOKEN", "").strip()
        if not token:
            return None
        url = os.environ.get("SLUICE_SLACK_API_URL", "").strip() or DEFAULT_API_URL
        secret = os.environ.get("SLUICE_SLACK_SIGNING_SECRET", "").strip() or None
        return cls(bot_token=token, signing_secret=secret, api_url=url)

    def client(self) -> WebClient:
        base = self.api_url if self.api_url.endswith("/") else self.api_url + "/"
        return WebClient(token=self.bot_token, base_url=base, timeout=TIMEOUT_SECONDS)
