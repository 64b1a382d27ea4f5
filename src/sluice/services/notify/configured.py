"""The notification channels one process has, built from its environment at start. A channel whose
settings are absent is simply not there, and produces no notifications."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sluice.runtime.settings import Settings
from sluice.services.notify.channels import Channel
from sluice.services.notify.email import EmailChannel, SmtpSettings
from sluice.services.notify.slack_channel import SlackChannel
from sluice.services.notify.teams import TeamsChannel, destinations_from_env


def channels_from_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """Each channel whose settings are present in `env` (the process environment by default)."""
    environ = os.environ if env is None else env
    channels: dict[str, Channel] = {}
    smtp = SmtpSettings.from_env(environ)
    if smtp is not None:
        channels["email"] = EmailChannel(smtp)
    teams = destinations_from_env(environ)
    if teams:
        channels["teams"] = TeamsChannel(teams)
    if settings.slack is not None:
        channels[SlackChannel.name] = SlackChannel(settings.slack.client())
    return channels
