"""Access flows: the policy a request is checked against.

A flow says who may ask (requesters), for what (targets: integration + resource type + a selector +
permissions), who must approve (approvers; none means automatic approval) and for how long at most.
The shapes here are the ones the config file and the API accept.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.domain.durations import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(StrEnum):
    SELF_SERVE = "self_serve"


class Subject(_Strict):
    """One way of naming people: a user by email, a group by name, or (approvers only) the manager."""

    user: str | None = None
    group: str | None = None
    manager: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> Subject:
        named = [k for k in ("user", "group") if getattr(self, k)] + (["manager"] if self.manager else [])
        if len(named) != 1:
            raise ValueError("name exactly one of 'user', 'group' or 'manager: true'")
        return self

    def describe(self) -> str:
        if self.user:
            return f"user {self.user}"
        if self.group:
            return f"group {self.group}"
        return "the requester's manager"


class Selector(_Strict):
    """Which resources of the target's type: every one (the default) or those named by path or name."""

    names: list[str] | None = None

    @field_validator("names")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("names must list at least one resource, or be left out to mean any")
        return value

    @property
    def is_any(self) -> bool:
        return self.names is None


class Target(_Strict):
    integration: str
    type: str
    select: Selector = Field(default_factory=Selector)
    permissions: list[str] = Field(min_length=1)


class FlowSpec(_Strict):
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    active: bool = True
    trigger: Trigger = Trigger.SELF_SERVE
    requesters: list[Subject] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    approvers: list[Subject] = Field(default_factory=list)
    max_duration: str = "1h"
    justification_required: bool = True
    pending_timeout: str = "24h"

    @field_validator("max_duration", "pending_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except Exception as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("requesters")
    @classmethod
    def _no_manager_requester(cls, value: list[Subject]) -> list[Subject]:
        if any(s.manager for s in value):
            raise ValueError("'manager' names an approver, not a requester")
        return value

    @property
    def max_duration_delta(self) -> timedelta:
        return parse_duration(self.max_duration)

    @property
    def pending_timeout_delta(self) -> timedelta:
        return parse_duration(self.pending_timeout)

    @property
    def auto_approve(self) -> bool:
        return not self.approvers
