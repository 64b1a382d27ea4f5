"""Input rules the server applies are the ones its OpenAPI schema states: what the schema admits is
taken, what it refuses is refused with a 422 problem naming the field."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.domain.durations import DURATION_PATTERN, parse_duration
from tests.api.conftest import Api, problem


@settings(max_examples=200, deadline=None)
@given(st.from_regex(DURATION_PATTERN, fullmatch=True).filter(lambda text: len(text) <= 40))
def test_every_duration_the_pattern_admits_parses_longer_than_zero(text: str) -> None:
    assert parse_duration(text).total_seconds() > 0


def test_the_duration_pattern_refuses_zero_and_stray_text() -> None:
    for text in ("0", "00", "0s", "0h0m", "1h\n", " 1h", "1.5h", "123456789"):
        assert re.fullmatch(DURATION_PATTERN, text) is None, text


def test_a_zero_duration_is_refused_as_the_schema_says(api: Api) -> None:
    body = {"resources": ["groups/oncall"], "permission": "member", "duration": "0", "reason": "x"}
    answer = problem(api.post("alice", "/requests", body), 422)
    assert answer["errors"][0]["location"] == "body.duration"
    assert "'0' is not a duration longer than zero" in answer["detail"]


def test_unknown_query_parameters_are_refused_by_name(api: Api) -> None:
    answer = problem(api.get("root", "/identities", stat="active"), 422)
    assert "'stat'" in answer["detail"]
    assert answer["errors"] == [{"location": "query.stat", "message": "is not a parameter of this operation"}]
    assert api.get("root", "/identities", limit=5).status_code == 200


def test_report_times_are_zoned_date_times_not_numbers(api: Api) -> None:
    answer = problem(api.get("root", "/reports/access", until="1700000000"), 422)
    assert "not a number" in answer["detail"]
    problem(api.get("root", "/reports/access", until="2026-11-01T00:00:00"), 422)  # no zone
    assert api.get("root", "/reports/access", until="2026-11-01T00:00:00Z").status_code == 200


def test_bundle_and_scope_names_in_the_path_follow_the_name_rule(api: Api) -> None:
    long_name = "b" * 121
    scope = {"query": 'type = "table"'}
    answer = problem(api.client.put(f"/api/v1/scopes/{long_name}", json=scope, headers=api.auth("root")), 422)
    assert answer["errors"][0]["location"] == "path.name"
    answer = problem(api.client.put("/api/v1/scopes/-dash", json=scope, headers=api.auth("root")), 422)
    assert "is not a name" in answer["detail"]


def test_bundle_targets_are_one_of_two_shapes_in_the_schema(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    targets = schema["components"]["schemas"]["BundleBody"]["properties"]["targets"]["items"]
    shapes = {ref["$ref"].rsplit("/", 1)[1] for ref in targets["oneOf"]}
    assert shapes == {"TypeTarget", "ScopeTarget"}
    both = {"integration": "groups", "type": "group", "scope": "x", "permissions": ["member"]}
    answer = problem(
        api.client.put("/api/v1/bundles/b1", json={"targets": [both]}, headers=api.auth("root")), 422
    )
    assert "body.targets.0.scope" in answer["detail"]
