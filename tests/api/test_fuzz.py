"""No input makes the API answer 500: random JSON for each field of a request body, and raw bodies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Api

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
paths = st.sampled_from(["groups/oncall", "groups/dba", "groups/", "", "groups/oncall/x"]) | st.text()
durations = (
    st.sampled_from(["20s", "15m", "4h", "1h30m", "0s", "4h1s", "99999999999999999999d", "3600"])
    | st.from_regex(r"\A[0-9]{1,30}[smhdx]?\Z")
    | st.text(max_size=12)
)
# Each field is either a plausible value or any JSON at all, so bodies often get past the schema and
# reach the services with one odd field.
fields = {
    "resources": st.lists(paths, max_size=4) | json_values,
    "permission": st.sampled_from(["member", "read", ""]) | json_values,
    "duration": durations | json_values,
    "reason": st.text(max_size=50) | json_values,
    "flow": st.sampled_from(["oncall", "nope", None]) | json_values,
}
bodies = (
    st.fixed_dictionaries(
        {k: fields[k] for k in ("resources", "permission", "duration")},
        optional={"reason": fields["reason"], "flow": fields["flow"]},
    )
    | st.fixed_dictionaries({}, optional=fields)
    | st.dictionaries(st.text(max_size=10), json_values)
)

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(body=bodies, who=st.sampled_from(["alice", "bob", "root"]))
def test_request_create_never_500(api: Api, body: dict[str, Any], who: str) -> None:
    response = api.post(who, "/requests", body)
    assert response.status_code < 500, (body, response.text)
    if response.status_code == 201:
        api.post("root", f"/requests/{response.json()['id']}/cancel")


RAW = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"{",
    b'{"resources": ["groups/oncall\\u0000"], "permission": "member", "duration": "1h"}',
    b'{"resources": ["groups/\\ud800"], "permission": "member", "duration": "1h"}',
    b'{"resources": ["groups/oncall"], "permission": "member", "duration": "1h", "reason": "\\udfff"}',
    b"\xff\xfe\x00",
    b'{"resources": NaN, "permission": -Infinity, "duration": Infinity}',
    json.dumps({"resources": ["groups/oncall"] * 300, "permission": "member", "duration": "1h"}).encode(),
]


@FUZZ
@given(raw=st.sampled_from(RAW) | st.binary(max_size=60))
def test_raw_bodies_never_500(api: Api, raw: bytes) -> None:
    response = api.client.post(
        "/api/v1/requests", content=raw, headers=api.auth("alice") | {"Content-Type": "application/json"}
    )
    assert response.status_code < 500, (raw, response.text)
    assert response.status_code != 201
