"""Access flows: the policy a request is checked against.

A flow says who may ask (requesters), for what (targets: integration + resource type + a selector +
permissions), who must approve (approvers; none means automatic approval) and for how long at most.
The shapes here are the ones the config file and the API accept.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sluice.domain.approval import ApprovalPolicy, Approver, ApproverGroup
from sluice.domain.durations import parse_duration
from sluice.domain.people import Subject
from sluice.domain.selectors import Selector
from sluice.domain.text import MAX_ITEMS, Description, Text, Token
from sluice.domain.windows import Extensions, TimeWindow

__all__ = ["FlowSpec", "Selector", "Subject", "Target", "Trigger"]

MAX_TARGETS = 200


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Trigger(StrEnum):
    SELF_SERVE = "self_serve"
    AUTOMATIC = "automatic"  # whoever matches the requesters holds the targets while they match


class Target(_Strict):
    """One of: `{integration, type, select, permissions}` (resources of one type in one integration);
    `{scope, permissions}` (whatever a saved scope matches); `{bundle}` (a bundle's targets)."""

    integration: Token | None = None
    type: Token | None = None
    select: Selector = Field(default_factory=Selector)
    permissions: list[Token] = Field(default_factory=list, max_length=50)
    bundle: Token | None = None
    scope: Token | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Target:
        if self.bundle is not None:
            if self.integration or self.type or self.scope or self.permissions or self.select != Selector():
                raise ValueError("a bundle target names only the bundle: {bundle: NAME}")
        elif self.scope is not None:
            if self.integration or self.type or self.select != Selector():
                raise ValueError("a scope target names only the scope and permissions: {scope, permissions}")
            if not self.permissions:
                raise ValueError("a scope target lists the permissions it grants")
        elif not self.integration or not self.type or not self.permissions:
            raise ValueError(
                "a target names integration, type and permissions (or is {bundle: NAME} or {scope: NAME, "
                "permissions: [...]})"
            )
        return self


class FlowSpec(_Strict):
    name: Annotated[str, Text(max_length=120, min_length=1)]
    description: Description = ""
    active: bool = True
    trigger: Trigger = Trigger.SELF_SERVE
    requesters: list[Subject] = Field(min_length=1, max_length=MAX_ITEMS)
    targets: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)
    approvers: list[Subject] = Field(default_factory=list, max_length=MAX_ITEMS)
    max_duration: Token = "1h"
    justification_required: bool = True
    pending_timeout: Token = "24h"
    approval: ApprovalPolicy | None = None  # richer than `approvers`; name one or the other
    window: TimeWindow | None = None
    extensions: Extensions | None = None
    # requests for others matching these (None: only oneself)
    grantees: list[Subject] | None = Field(default=None, max_length=MAX_ITEMS)
    for_direct_reports: bool = False
    # who may ask for someone else under this flow (None: any requester the flow lets do so)
    on_behalf: list[Subject] | None = Field(default=None, max_length=MAX_ITEMS)

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
        if any(s.mentions_manager_of_requester() for s in value):
            raise ValueError("'manager' names an approver, not a requester")
        return value

    @model_validator(mode="after")
    def _on_behalf_needs_others(self) -> FlowSpec:
        if self.on_behalf is not None and self.grantees is None and not self.for_direct_reports:
            raise ValueError(
                "'on_behalf' says who may ask for others, but this flow lets people ask only for "
                "themselves; add 'grantees' or 'for_direct_reports: true'"
            )
        return self

    @property
    def max_duration_delta(self) -> timedelta:
        return parse_duration(self.max_duration)

    @property
    def pending_timeout_delta(self) -> timedelta:
        return parse_duration(self.pending_timeout)

    @model_validator(mode="after")
    def _one_approval_form(self) -> FlowSpec:
        if self.approvers and self.approval is not None:
            raise ValueError("name either 'approvers' or 'approval', not both")
        if self.trigger == Trigger.AUTOMATIC and (self.approvers or self.approval is not None):
            raise ValueError("an automatic flow grants without approval; remove 'approvers'/'approval'")
        return self

    @property
    def auto_approve(self) -> bool:
        return not self.approvers and self.approval is None

    @property
    def approval_policy(self) -> ApprovalPolicy | None:
        """The approval policy, with the plain `approvers` list read as "any one of them"."""
        if self.approval is not None or not self.approvers:
            return self.approval
        approvers = [Approver.from_subject(s) for s in self.approvers]
        return ApprovalPolicy(groups=[ApproverGroup(approvers=approvers)])
