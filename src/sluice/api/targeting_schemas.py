"""Bodies and shapes of the targeting endpoints: tags, bundles, scopes, requestable, explain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from sluice.api.schemas import Body, DurationText, FlowName, PathText, ReasonText
from sluice.domain.bundles import BundleSpec, ScopeSpec
from sluice.domain.errors import InvalidInput
from sluice.domain.flows import MAX_TARGETS, Target
from sluice.domain.text import Description, QueryText, Text, text_keys
from sluice.services.requests.submit import MAX_UNITS_PER_REQUEST
from sluice.services.targeting.tag_changes import MAX_BATCH
from sluice.services.targeting.tags import MAX_VALUE

TagKey = Annotated[str, Text(max_length=200, min_length=1)]
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


class BundleBody(Body):
    description: Description = ""
    targets: list[Target] = Field(min_length=1, max_length=MAX_TARGETS)


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
