"""The notification channels one process has, built from its environment at start. A channel whose
settings are absent is simply not there, and produces no notifications."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sluice.domain.errors import SluiceError
from sluice.runtime.settings import Settings
from sluice.services.notify.channels import Channel
from sluice.services.notify.email import EmailChannel, SmtpSettings
from sluice.services.notify.slack_channel import SlackChannel
from sluice.services.notify.teams import TeamsChannel, destinations_from_env


class ChannelConfigError(SluiceError):
    """A channel's settings cannot work: the process refuses to start with them, naming the setting."""


def channels_from_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """Each channel whose settings are present in `env` (the process environment by default)."""
    environ = os.environ if env is None else env
    channels: dict[str, Channel] = {}
    try:
        smtp = SmtpSettings.from_env(environ)
        teams = destinations_from_env(environ)
    except ValueError as exc:
        raise ChannelConfigError(str(exc)) from None
    if smtp is not None:
        channels["email"] = EmailChannel(smtp)
    if teams:
        channels["teams"] = TeamsChannel(teams)
    if settings.slack is not None:
        channels[SlackChannel.name] = SlackChannel(settings.slack.client())
    return channels
