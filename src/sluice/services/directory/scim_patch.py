"""PATCH bodies as identity providers send them: read into RFC 7644's shape (with each deviation
accepted and logged) and applied to a resource with scim2-models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, Error, PatchOp

from sluice.services.directory.scim_common import (
    ResourceT,
    ScimError,
    boolean_of,
    log,
    real_booleans,
    validation_failure,
)

_TYPED_VALUE_PATH = re.compile(r'^(\w+)\[type eq "([^"]+)"\]\.(\w+)$', re.IGNORECASE)


def normalise_operations(body: Any, current: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body as RFC 7644 writes it, from what Entra ID, Okta and others send: `op` in any case,
    boolean strings, a manager given as a bare id, and an add to `emails[type eq "work"].value` when the
    user has no work email yet (Entra sends this on every create)."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise ScimError(
            Error(status=400, scim_type="invalidSyntax", detail="a PATCH body holds a list of Operations")
        )
    operations = []
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            raise ScimError(Error(status=400, scim_type="invalidSyntax", detail="an operation is an object"))
        operation = dict(operation)
        if isinstance(operation.get("op"), str) and operation["op"] != operation["op"].lower():
            log.info("SCIM: accepted the PATCH op %r as %r", operation["op"], operation["op"].lower())
            operation["op"] = operation["op"].lower()
        path = operation.get("path")
        if "value" in operation:
            operation["value"] = (
                real_booleans(operation["value"])
                if not isinstance(path, str)
                else boolean_of(path, operation["value"])
            )
        if (
            isinstance(path, str)
            and path.lower().endswith(":manager")
            and isinstance(operation.get("value"), str)
        ):
            operation["value"] = {"value": operation["value"]}
        if isinstance(path, str) and operation.get("op") in ("add", "replace"):
            operation = _typed_value_add(operation, path, current)
        operations.append(operation)
    return {**body, "Operations": operations}


def _typed_value_add(operation: dict[str, Any], path: str, current: dict[str, Any]) -> dict[str, Any]:
    match = _TYPED_VALUE_PATH.match(path)
    if match is None:
        return operation
    attribute, kind, sub = match.groups()
    existing = next((v for k, v in current.items() if k.lower() == attribute.lower()), None) or []
    if any(isinstance(e, dict) and str(e.get("type", "")).lower() == kind.lower() for e in existing):
        return operation
    return {"op": "add", "path": attribute, "value": [{"type": kind, sub: operation.get("value")}]}


def apply_patch(model: type[ResourceT], resource: ResourceT, body: Any) -> bool:
    """Apply a PATCH (normalised) to `resource` with scim2-models; True when something changed."""
    current = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    try:
        patch = PatchOp[model].model_validate(  # type: ignore[valid-type]
            normalise_operations(body, current), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        return bool(patch.patch(resource))
    except ValidationError as exc:
        raise validation_failure(exc) from exc
