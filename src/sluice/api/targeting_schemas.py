"""Bodies and shapes of the targeting endpoints: tags, bundles, scopes, requestable, explain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError

from sluice.api.schemas import Body, DurationText, FlowName, PathText, ReasonText
from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import MAX_TARGETS, Selector, Target
from sluice.domain.text import Description, QueryText, Text, Token, text_keys
from sluice.services.requests.submit import MAX_UNITS_PER_REQUEST
from sluice.services.targeting.tag_changes import MAX_BATCH
from sluice.services.targeting.tags import MAX_VALUE

# The key rule of services/targeting/tags.TAG_KEY, stated in the schema so clients see it.
TagKey = Annotated[
    str,
    Text(
        max_length=200,
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]*$",
        pattern_words="a tag key: a letter or digit, then letters, digits and '_.:/-'",
    ),
]
TagValue = Annotated[str, Text(max_length=MAX_VALUE)]
MAX_TAGS = 100  # tags set, or deleted, on one resource in one call


class TagsPut(Body):
    tags: dict[TagKey, TagValue] = Field(
        max_length=MAX_TAGS, description="The resource's injected tags, exactly", json_schema_extra=text_keys
    )


class TagChangeBody(Body):
    resource: PathText = Field(description="A resource path or id")
    set: dict[TagKey, TagValue] = Field(
        default_factory=dict, max_length=MAX_TAGS, json_schema_extra=text_keys
    )
    delete: list[TagKey] = Field(default_factory=list, max_length=MAX_TAGS)


class TagBatch(Body):
    changes: list[TagChangeBody] = Field(min_length=1, max_length=MAX_BATCH)


class TagView(BaseModel):
    key: str
    value: str = Field(description="The effective value: the injected one if set, else the discovered one")
    source: str = Field(description="Where the effective value comes from: `discovered` or `api:<email>`")
    discovered_value: str | None = Field(
        description="What the last sync read in the target (null if nothing): in effect again once no "
        "injected value overrides it"
    )
    updated_at: datetime


class ResourceTags(BaseModel):
    resource: str
    path: str
    tags: list[TagView]


class BatchView(BaseModel):
    resources: int
    set: int
    deleted: int


Word = Annotated[str, Text(max_length=120, min_length=1)]
Permissions = Annotated[list[Token], Field(min_length=1, max_length=50)]


class TypeTarget(Body):
    """Resources of one type in one integration, picked by a selector (every one if left out)."""

    integration: Word
    type: Word
    select: Selector = Field(default_factory=Selector)
    permissions: Permissions


class ScopeTarget(Body):
    """Whatever a saved scope matches."""

    scope: Word
    permissions: Permissions


def _target_form(value: Any) -> str | None:
    """Which shape a target has: one naming a scope, else one naming an integration and type; None
    (refused with the words below) for a target naming a bundle."""
    if isinstance(value, dict):
        if "bundle" in value:
            return None
        return "scope" if "scope" in value else "type"
    return "scope" if isinstance(value, ScopeTarget) else "type"


# A bundle member is exactly one of the two shapes; the schema says so with `oneOf`. (A bundle cannot
# contain a bundle, so the third shape a flow target may take is not offered here.)
BundleTarget = Annotated[
    Annotated[TypeTarget, Tag("type")] | Annotated[ScopeTarget, Tag("scope")],
    Discriminator(
        _target_form,
        custom_error_type="nested_bundle",
        custom_error_message="a bundle cannot contain a bundle; list that bundle's targets instead",
    ),
]


class BundleBody(Body):
    description: Description = ""
    targets: list[BundleTarget] = Field(min_length=1, max_length=MAX_TARGETS)

    def plain_targets(self) -> list[Target]:
        return [Target.model_validate(t.model_dump(exclude_defaults=True)) for t in self.targets]


class BundleView(BaseModel):
    name: str
    description: str
    targets: list[dict[str, Any]]


class BundleList(BaseModel):
    items: list[BundleView]


class BundleRequestBody(Body):
    resources: list[PathText] | None = Field(
        default=None, max_length=MAX_UNITS_PER_REQUEST, description="A subset of the bundle's resources"
    )
    duration: DurationText
    reason: ReasonText = ""
    flow: FlowName | None = None


class ScopeBody(Body):
    description: Description = ""
    query: QueryText


class ScopeView(BaseModel):
    name: str
    description: str
    query: str


class ScopeList(BaseModel):
    items: list[ScopeView]


class OptionView(BaseModel):
    permission: str
    flow: str
    max_duration: str
    approval_required: bool
    approvers: list[str]
    other_flows: list[str]


class RequestableItem(BaseModel):
    id: str
    integration: str
    type: str
    name: str
    path: str
    tags: dict[str, str]
    options: list[OptionView]


class RequestableBundleView(BaseModel):
    bundle: str
    flow: str
    max_duration: str
    approval_required: bool
    approvers: list[str]


class RequestablePageView(BaseModel):
    items: list[RequestableItem]
    next_offset: int | None = Field(description="Pass as offset for the next page; null on the last")
    bundles: list[RequestableBundleView] = Field(description="Bundles you may request (first page only)")


class FlowVerdictView(BaseModel):
    flow: str
    allowed: bool
    reason: str
    max_duration: str
    approval_required: bool
    approvers: list[str]


class ExplanationView(BaseModel):
    identity: str
    resource: str
    resource_type: str
    tags: dict[str, str]
    permission: str
    allowed: bool
    summary: str
    flow: str | None
    flows: list[FlowVerdictView]


SpecT = TypeVar("SpecT", BundleSpec, ScopeSpec)


def spec_from_body(model: type[SpecT], data: dict[str, object]) -> SpecT:
    """A bundle or scope spec from a request body, its validation errors as a 422 problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput(errors[0]["message"] if errors else "invalid", errors=errors) from exc
