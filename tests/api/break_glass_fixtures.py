"""The API tests' on-call flow with break-glass allowed, and a break-glass ask."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sluice.domain.flows import FlowSpec
from sluice.store.db import transaction
from sluice.store.tables import AccessFlow
from tests.api.conftest import ONCALL_FLOW, Api


def allow_break_glass(api: Api, *, notify: dict[str, Any] | None = None, **break_glass: Any) -> None:
    """Give the on-call flow a `break_glass:` section (30 minutes, one at a time, unless told), and
    the `notify:` block given."""
    spec = ONCALL_FLOW.model_dump(mode="json") | {
        "break_glass": {"max_duration": "30m", "one_at_a_time": True} | break_glass
    }
    if notify is not None:
        spec["notify"] = notify
    checked = FlowSpec.model_validate(spec).model_dump(mode="json")
    with transaction(api.runtime.factory) as session:
        row = session.scalar(select(AccessFlow).where(AccessFlow.name == ONCALL_FLOW.name))
        assert row is not None
        row.spec = checked


def break_glass_body(group: str = "oncall", duration: str = "20m", **glass: Any) -> dict[str, Any]:
    return {
        "resources": [f"groups/{group}"],
        "permission": "member",
        "duration": duration,
        "break_glass": {"reason": "the database is down", "incident": "INC-123"} | glass,
    }
