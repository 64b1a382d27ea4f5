"""Request bodies and response shapes of the REST API. Bodies refuse unknown fields; responses never
carry a column that is not named here (the credentials column is not)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from sluice.domain.connection import Connection
from sluice.domain.durations import DURATION_PATTERN, DURATION_WORDS
from sluice.domain.errors import InvalidInput
from sluice.domain.roles import Role
from sluice.domain.states import ReviewState
from sluice.domain.text import Email, Text
from sluice.domain.tokens import Scope
from sluice.services.requests.break_glass import MAX_INCIDENT_LENGTH
from sluice.services.requests.submit import MAX_REASON_LENGTH, MAX_UNITS_PER_REQUEST

# Every string a caller sends is `Text`: bounded, without NUL or lone surrogates (see domain/text.py).
PathText = Annotated[str, Text(max_length=1000, min_length=1)]
PermissionText = Annotated[str, Text(max_length=60, min_length=1)]
DurationText = Annotated[
    str, Text(max_length=40, min_length=1, pattern=DURATION_PATTERN, pattern_words=DURATION_WORDS)
]
FlowName = Annotated[str, Text(max_length=120, min_length=1)]
ReasonText = Annotated[str, Text(max_length=MAX_REASON_LENGTH)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestCreate(Body):
    resources: list[PathText] = Field(
        min_length=1,
        max_length=MAX_UNITS_PER_REQUEST,
        description="Resource paths, each named once",
    )
    permission: PermissionText
    duration: DurationText = Field(description="How long, written like '20s', '15m', '4h' or '1h30m'")
    reason: ReasonText = ""
    flow: FlowName | None = Field(default=None, description="Use this flow rather than the best match")
    starts_at: datetime | None = Field(default=None, description="Start later (ISO 8601 with a zone)")
    on_behalf_of: Email | None = Field(
        default=None, description="Ask for someone else (their email): the access is theirs"
    )
    for_user: Email | None = Field(default=None, description="The older name of `on_behalf_of`")
    break_glass: BreakGlassBody | None = Field(
        default=None,
        description="Emergency access: approved by you at once, under a flow that allows break-glass; "
        "approvers are told and review it afterwards",
    )

    @property
    def beneficiary(self) -> str | None:
        """Whom the access is for (None: the caller), named by either field, once."""
        if self.on_behalf_of and self.for_user and self.on_behalf_of.lower() != self.for_user.lower():
            raise InvalidInput("on_behalf_of and for_user name different people; for_user is its older name")
        return self.on_behalf_of or self.for_user


class FavouriteUnit(BaseModel):
    resource: str
    permission: str


class FavouriteCreate(Body):
    name: Annotated[str, Text(max_length=120, min_length=1)] = Field(description="Unique among yours")
    resources: list[PathText] = Field(
        default_factory=list,
        max_length=MAX_UNITS_PER_REQUEST,
        description="Resource paths, with `permission`; or leave out and name a `bundle`",
    )
    permission: PermissionText | None = None
    bundle: FlowName | None = Field(default=None, description="Ask for this bundle's resources")
    duration: DurationText
    reason: ReasonText = ""


class FavouriteView(BaseModel):
    id: str
    name: str
    bundle: str | None
    units: list[FavouriteUnit]
    duration: str
    reason: str
    created_at: datetime


class FavouriteList(BaseModel):
    items: list[FavouriteView]


class DecisionBody(Body):
    reason: ReasonText = ""


# A reason that must be given: storable text with at least one character that is not a space.
_NOT_BLANK = r"^[^\u0000\ud800-\udfff]*[^\u0000\ud800-\udfff\s][^\u0000\ud800-\udfff]*$"
RequiredReason = Annotated[
    str,
    Text(
        max_length=MAX_REASON_LENGTH,
        min_length=1,
        pattern=_NOT_BLANK,
        pattern_words="a reason: it holds only spaces",
    ),
]


IncidentText = Annotated[
    str,
    Text(
        max_length=MAX_INCIDENT_LENGTH,
        min_length=1,
        pattern=_NOT_BLANK,
        pattern_words="an incident reference: it holds only spaces",
    ),
]


class BreakGlassBody(Body):
    reason: RequiredReason = Field(description="What the emergency is; every approver reads it")
    incident: IncidentText = Field(description="The incident this access is for, e.g. INC-123")


class ReviewBody(Body):
    reason: RequiredReason = Field(description="What the review found; kept in the audit log")
    outcome: Literal["ok", "revoke"] = Field(
        default="ok", description="ok: the access was justified; revoke: end it now"
    )


class ReasonBody(Body):
    reason: RequiredReason = Field(description="Why; kept in the audit log")


class IntegrationStopBody(ReasonBody):
    integration: Annotated[str, Text(max_length=120, min_length=1)] = Field(
        description="Every live grant of this integration is revoked"
    )


class Health(BaseModel):
    status: str


class Me(BaseModel):
    email: str
    name: str
    admin: bool
    role: Role = Field(description="what the token may do beyond the caller's own access (domain/roles.py)")
    groups: list[str]
    signed_in_with: str = Field(description="`token` (an API token) or the sign-in: `web`, `cli`, `device`")
    expires_at: datetime | None = Field(
        default=None, description="when this session or token ends (None: never)"
    )
    scopes: list[Scope] = Field(
        default_factory=list, description="what this token may do (sessions: every scope)"
    )


class GrantView(BaseModel):
    id: str
    request_id: str | None
    grantee: str
    integration: str
    resource: str
    resource_type: str
    permission: str
    state: str
    desired: str
    actual: str
    principal: str
    starts_at: datetime | None
    ends_at: datetime | None
    granted_at: datetime | None
    revoked_at: datetime | None
    end_reason: str | None
    last_error: str | None
    attempts: int


class AccessDetails(GrantView):
    """A grant with what the grantee needs to use it. Empty while the access is not active."""

    host: str | None = None
    port: int | None = None
    database: str | None = None
    username: str | None = None
    password: str | None = None
    private_key: str | None = Field(
        default=None, description="For SSH grants: the private key the grant's certificate is for (OpenSSH)."
    )
    connection: Connection | None = Field(
        default=None,
        description="Everything the target's connector returned, typed by the integration's kind.",
    )
    client: str | None = Field(
        default=None,
        description="The command line that opens the target's own client (psql, mysql, redis-cli…).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="The environment variables that client reads (PGHOST…), the password among them.",
    )


class ApprovalView(BaseModel):
    approver: str
    decision: str
    reason: str
    at: datetime


class RequestView(BaseModel):
    id: str
    requester: str
    on_behalf_of: str | None = Field(description="Whom the access is for, when not the requester")
    starts_at: datetime | None = Field(description="The later start asked for; null: at once")
    flow: str
    reason: str
    duration: str
    duration_seconds: int
    status: str
    state: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    pending_until: datetime | None
    approvers: list[str]
    approvals: list[ApprovalView]
    grants: list[GrantView]
    break_glass: bool = Field(default=False, description="Approved by its requester in an emergency")
    incident: str | None = Field(default=None, description="The incident a break-glass request names")
    review: ReviewState | None = Field(
        default=None,
        description="A break-glass request's review: awaiting_review until an approver reviews it, then "
        "reviewed or revoked; null for other requests",
    )
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    review_reason: str | None = None


class RequestPage(BaseModel):
    items: list[RequestView]
    total: int


class GrantPage(BaseModel):
    items: list[GrantView]
    total: int


class ResourceView(BaseModel):
    id: str
    integration: str
    type: str
    name: str
    path: str
    parent: str | None = Field(description="The parent resource's path")
    deleted_at: datetime | None
    tags: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
        Annotated[str, StringConstraints(max_length=500)],
    ] = Field(
        default_factory=dict,
        description="The effective tags (an injected value wins over a discovered one); "
        "`GET /resources/{ref}/tags` says where each comes from",
    )


class ResourcePage(BaseModel):
    items: list[ResourceView]
    total: int


class FlowList(BaseModel):
    items: list[dict[str, Any]]


class IdentityView(BaseModel):
    email: str
    name: str
    active: bool
    manager: str | None
    groups: list[str]
    attributes: dict[str, Any]


class IdentityPage(BaseModel):
    items: list[IdentityView]
    total: int


class MemberView(BaseModel):
    email: str
    source: str
    expires_at: datetime | None


class GroupView(BaseModel):
    name: str
    description: str
    source: str
    members: list[MemberView]


class GroupPage(BaseModel):
    items: list[GroupView]
    total: int


class IntegrationView(BaseModel):
    name: str
    kind: str
    owner: str | None
    sync_interval_seconds: int
    last_sync_at: datetime | None
    last_sync_error: str | None
    resource_count: int


class IntegrationList(BaseModel):
    items: list[IntegrationView]


class SyncView(BaseModel):
    integration: str
    added: int
    updated: int
    deleted: int
    total: int


class AuditEventView(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    reason: str | None
    details: dict[str, Any]


class AuditPage(BaseModel):
    items: list[AuditEventView]


class AdminGrantView(GrantView):
    """A grant as operators see it: with how long its target work has been failing."""

    failing_since: datetime | None = Field(description="Since when the target work keeps failing")
    revoke_failed_at: datetime | None = Field(
        description="When the revoke was declared `revoke_failed` (it is still retried)"
    )


class AdminGrantPage(BaseModel):
    items: list[AdminGrantView]
    total: int
