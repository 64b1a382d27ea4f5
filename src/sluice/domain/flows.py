"""Access flows: the policy a request is checked against.

A flow says who may ask (requesters), for what (targets: integration + resource type + a selector +
permissions), who must approve (approvers; none means automatic approval) and for how long at most.
The shapes here are the ones the config file and the API accept.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from sluice.domain.approval import ApprovalPolicy, Approver, ApproverGroup
from sluice.domain.durations import checked_duration, parse_duration
from sluice.domain.notify import NotifySpec
from sluice.domain.people import Subject
from sluice.domain.selectors import Selector
from sluice.domain.text import MAX_ITEMS, Description, Text, Token
from sluice.domain.windows import Extensions, TimeWindow

__all__ = ["BreakGlass", "FlowSpec", "Selector", "Subject", "Target", "Trigger"]

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


class BreakGlass(_Strict):
    """Emergency access under a flow: the requester approves their own request, with a reason and an
    incident reference, for at most `max_duration`; approvers review it afterwards."""

    max_duration: Token = "1h"
    # refuse a second break-glass by someone while one of theirs is still unreviewed
    one_at_a_time: bool = True
    # who may break the glass (None: whoever may request under the flow)
    allowed: list[Subject] | None = Field(default=None, max_length=MAX_ITEMS)

    @field_validator("max_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        return checked_duration(value)

    @field_validator("allowed")
    @classmethod
    def _no_manager(cls, value: list[Subject] | None) -> list[Subject] | None:
        if value is not None and any(s.mentions_manager_of_requester() for s in value):
            raise ValueError("'manager' names an approver, not who may break the glass")
        return value

    @property
    def max_duration_delta(self) -> timedelta:
        return parse_duration(self.max_duration)


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
    break_glass: BreakGlass | None = None  # emergency self-approval, reviewed afterwards
    notify: NotifySpec | None = None  # who hears what (None: the defaults of `NotifySpec`)

    @model_serializer(mode="wrap")
    def _without_default_notify(self, handler: Any) -> dict[str, Any]:
        """Leaves `notify` out when the flow does not name it, so such a flow is stored (and compared
        by `sluice plan`) exactly as before the key existed."""
        data: dict[str, Any] = handler(self)
        if data.get("notify") is None:
            data.pop("notify", None)
        return data

    @property
    def notify_spec(self) -> NotifySpec:
        return self.notify or NotifySpec()

    @field_validator("max_duration", "pending_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        return checked_duration(value)

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
        if self.break_glass is not None and self.auto_approve:
            raise ValueError("break_glass needs approvers to review it; name 'approvers' or 'approval'")
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
