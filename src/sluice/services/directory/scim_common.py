"""What the SCIM users and groups share: source names, ownership, conflicts, reading a filter and a
page, and the common ways identity providers deviate from RFC 7644 (accepted, and logged)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    InvalidFilterException,
    InvalidValueException,
    NotFoundException,
    Resource,
    SCIMException,
    ScimFilter,
    UniquenessException,
)
from scim2_models.path import AttrPath, Comparison
from scim2_models.path.expressions import CompareOperator
from sqlalchemy import select
from sqlalchemy.orm import Session

from sluice.events.audit import Action, record
from sluice.services.directory.sources import SCIM_PREFIX, owner_words
from sluice.store.scim_tables import ScimRecord

log = logging.getLogger("sluice.scim")

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,33}$")
MAX_PAGE = 1000
ResourceT = TypeVar("ResourceT", bound=Resource[Any])


class ScimError(SCIMException):
    """A SCIM error raised from inside a validation (e.g. in a PATCH), kept with its status and type."""

    def __init__(self, error: Error) -> None:
        super().__init__(detail=error.detail)
        self._error = error
        self.status = int(error.status or 400)
        self.scim_type = error.scim_type or ""


def source_of(name: str) -> str:
    """The `source` value rows of a SCIM directory carry: `scim:<name>`."""
    if not _SOURCE_NAME.match(name):
        raise InvalidValueException(
            detail=f"source {name!r} must be 1 to 34 lowercase letters, digits, '-' or '_' (e.g. okta)"
        )
    return SCIM_PREFIX + name


class ForeignOwner(UniquenessException):
    """A source tried to write an identity or group another source owns: a 409 `uniqueness` error for
    the provider to show, never a silent merge. The refused write is rolled back; the caller records
    the conflict (`record`) in a transaction of its own, so the audit keeps it."""

    def __init__(self, *, source: str, owner: str, kind: str, name: str, now: datetime) -> None:
        detail = f"{kind} {name} is owned by {owner_words(owner)}; {owner_words(source)} cannot change it"
        super().__init__(detail=detail)
        self.source, self.kind, self.name, self.now = source, kind, name, now

    def record(self, session: Session) -> None:
        record(
            session,
            now=self.now,
            actor=self.source,
            action=Action.DIRECTORY_CONFLICT,
            subject_type=self.kind,
            subject_id=self.name[:200],
            reason=self.detail,
            kind=self.kind,
            name=self.name,
            source=self.source,
        )
        log.warning("SCIM conflict: %s", self.detail)


def validation_failure(exc: ValidationError) -> ScimError:
    """A pydantic error from a scim2-models validation, as the first SCIM error it holds."""
    return ScimError(Error.from_validation_errors(exc)[0])


def parse_resource(model: type[ResourceT], body: Any, context: Context) -> ResourceT:
    if not isinstance(body, dict):
        raise ScimError(Error(status=400, scim_type="invalidSyntax", detail="send a JSON object"))
    try:
        return model.model_validate(real_booleans(body), scim_ctx=context)
    except ValidationError as exc:
        raise validation_failure(exc) from exc


def record_of(session: Session, *, source: str, kind: str, resource_id: str) -> ScimRecord:
    row = session.get(ScimRecord, resource_id)
    if row is None or row.source != source or row.kind != kind:
        raise NotFoundException(detail=f"no {kind} {resource_id!r} in this directory")
    return row


def taken_key(session: Session, *, source: str, kind: str, key: str, other_than: str | None) -> None:
    """userName / displayName are unique within a source."""
    query = select(ScimRecord.id).where(
        ScimRecord.source == source, ScimRecord.kind == kind, ScimRecord.key == key
    )
    found = session.scalar(query)
    if found is not None and found != other_than:
        raise UniquenessException(detail=f"a {kind} named {key!r} exists already in this directory")


# -- Reading a list ---------------------------------------------------------------------------------

_NARROWING = {"id": ScimRecord.id, "username": ScimRecord.key, "displayname": ScimRecord.key}


@dataclass(frozen=True)
class Page(Generic[ResourceT]):
    total: int
    start_index: int
    items: list[ResourceT]


def parse_filter(model: type[ResourceT], text: str | None) -> ScimFilter[ResourceT] | None:
    if text is None or not text.strip():
        return None
    try:
        return ScimFilter[model](text)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise validation_failure(exc) from exc
    except (ValueError, TypeError) as exc:
        raise InvalidFilterException(detail=f"filter {text!r}: {exc}") from exc


def narrowed_records(
    session: Session, *, source: str, kind: str, scim_filter: ScimFilter[Any] | None
) -> list[ScimRecord]:
    """The records a filter can match. `userName`, `displayName`, `externalId` and `id` equality (how
    providers look a resource up before creating it) is answered by the store; anything else is
    matched on each resource afterwards."""
    query = select(ScimRecord).where(ScimRecord.source == source, ScimRecord.kind == kind)
    node = scim_filter.ast if scim_filter is not None else None
    if isinstance(node, Comparison) and node.op == CompareOperator.eq and isinstance(node.value, str):
        path: AttrPath = node.attr_path
        name = path.attr.lower()
        if path.sub_attr is None and name in _NARROWING:
            value = node.value.lower() if name == "username" else node.value
            query = query.where(_NARROWING[name] == value)
        elif path.sub_attr is None and name == "externalid":
            query = query.where(ScimRecord.external_id == node.value)
    return list(session.scalars(query.order_by(ScimRecord.key, ScimRecord.id)))


def page_of(
    records: Sequence[ScimRecord],
    build: Callable[[Sequence[ScimRecord]], list[ResourceT]],
    scim_filter: ScimFilter[ResourceT] | None,
    *,
    start_index: int | None,
    count: int | None,
) -> Page[ResourceT]:
    """RFC 7644 §3.4.2.4: startIndex is 1-based (below 1 means 1), count below 0 means 0."""
    start = max(1, start_index or 1)
    size = MAX_PAGE if count is None else max(0, min(count, MAX_PAGE))
    if scim_filter is None:
        return Page(total=len(records), start_index=start, items=build(records[start - 1 : start - 1 + size]))
    matching = [resource for resource in build(records) if scim_filter.match(resource)]
    return Page(total=len(matching), start_index=start, items=matching[start - 1 : start - 1 + size])


# -- What providers send ----------------------------------------------------------------------------


def real_booleans(value: Any) -> Any:
    """Entra ID sends booleans as "True" / "False"; the attributes that hold booleans get real ones."""
    if isinstance(value, dict):
        return {k: boolean_of(k, v) for k, v in value.items()}
    return value


_BOOLEAN_ATTRIBUTES = frozenset({"active", "primary"})


def boolean_of(key: str, value: Any) -> Any:
    name = key.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()
    if name in _BOOLEAN_ATTRIBUTES and isinstance(value, str) and value.lower() in ("true", "false"):
        log.info("SCIM: accepted the string %r as a boolean for %s", value, key)
        return value.lower() == "true"
    if isinstance(value, dict):
        return real_booleans(value)
    if isinstance(value, list):
        return [real_booleans(item) for item in value]
    return value
