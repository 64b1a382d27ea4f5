"""Who hears what about a flow's requests and grants: the `notify:` block of a flow in the config file.
Left out, the defaults apply (`NotifySpec()`): approvers and the requester hear on every personal
channel that is configured (email, Slack), no shared destination is posted to, nobody is reminded."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sluice.domain.durations import checked_duration, parse_duration
from sluice.domain.text import Text, Token

PERSON_CHANNELS = ("email", "slack")  # channels that reach one person
DESTINATION_CHANNELS = ("slack", "teams")  # channels with shared destinations ("slack:#db", "teams:db")
MAX_DESTINATIONS = 20

Destination = Annotated[str, Text(max_length=200, min_length=3)]


def _known_channels(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    seen: set[str] = set()
    for name in value:
        if name not in PERSON_CHANNELS:
            raise ValueError(f"{name!r} is not a channel that reaches a person; use one of: email, slack")
        if name in seen:
            raise ValueError(f"{name!r} is named twice")
        seen.add(name)
    return value


class NotifySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The channels each audience hears on; None: every personal channel that is configured; []: none.
    approvers: list[Token] | None = Field(default=None, max_length=len(PERSON_CHANNELS))
    requester: list[Token] | None = Field(default=None, max_length=len(PERSON_CHANNELS))
    # Resource and integration owners hear of new requests and of revokes that keep failing.
    owners: list[Token] = Field(default_factory=list, max_length=len(PERSON_CHANNELS))
    # Shared places that hear of new requests and of their outcome: "slack:#db-access", "teams:db-team".
    destinations: list[Destination] = Field(default_factory=list, max_length=MAX_DESTINATIONS)
    # Remind the approvers who can still decide after a request waited this long, and again every
    # `remind_every` (None: once).
    remind_after: Token | None = None
    remind_every: Token | None = None

    @field_validator("approvers", "requester", "owners")
    @classmethod
    def _channels(cls, value: list[str] | None) -> list[str] | None:
        return _known_channels(value)

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, value: list[str]) -> list[str]:
        for destination in value:
            channel, _, target = destination.partition(":")
            if channel not in DESTINATION_CHANNELS or not target.strip():
                raise ValueError(
                    f"{destination!r} is not a destination: write slack:#channel or teams:NAME "
                    "(a Teams destination named in SLUICE_TEAMS_WEBHOOKS)"
                )
        if len(set(value)) != len(value):
            raise ValueError("a destination is named twice")
        return value

    @field_validator("remind_after", "remind_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        return None if value is None else checked_duration(value)

    @property
    def remind_after_delta(self) -> timedelta | None:
        return None if self.remind_after is None else parse_duration(self.remind_after)

    @property
    def remind_every_delta(self) -> timedelta | None:
        return None if self.remind_every is None else parse_duration(self.remind_every)

    def person_channels(self, audience: str, configured: set[str]) -> list[str]:
        """The channels `audience` ("approvers", "requester", "owners") hears on, of those configured."""
        chosen: list[str] | None = getattr(self, audience)
        names = PERSON_CHANNELS if chosen is None else chosen
        return [name for name in names if name in configured]
