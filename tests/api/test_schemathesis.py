"""Schemathesis over the whole REST API, every built-in check: the published OpenAPI schema must state the
rules the server really applies (inputs it rejects, statuses and bodies it answers, headers it sends).

Bounded and reproducible: a fixed number of derandomized examples per operation, against the in-process
app on a seeded SQLite store, as the admin and as a plain user.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.case import Case
from schemathesis.openapi import from_asgi

from sluice.api.app import create_app
from sluice.api.edge import EdgeLimits
from tests.api.conftest import build_runtime, seed
from tests.conftest import Clock

# The rate limiter and the failed-token lockout are real rules, but a fuzz run sends far more requests
# from one address and one token in a minute than they allow; their 429 answers are covered by
# tests/api/test_edge.py. Here they are set high enough that no example meets them, so every answer is
# the operation's own.
FUZZ_LIMITS = EdgeLimits(per_token_per_minute=1e9, per_address_per_minute=1e9, failed_auth_limit=10**9)

load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())

# The app is built when the module loads because schemathesis reads the schema at collection time (its
# fixture-based loader does not run under the pytest this project pins); the store is a SQLite file in a
# temporary directory that the module fixture below removes.
_HOME = Path(tempfile.mkdtemp(prefix="sluice-schemathesis-"))
_RUNTIME = build_runtime(f"sqlite:///{_HOME / 'store.db'}", _HOME, Clock())
_TOKENS = seed(_RUNTIME)
# The REST API under /api/v1. SCIM (/scim/v2) speaks RFC 7644, not this schema's problems, and is
# checked by scim2-tester (tests/scim/test_conformance.py); sign-in (/auth) is a browser redirect flow
# checked against a real OpenID Provider (tests/signin/).
schema = from_asgi("/openapi.json", create_app(_RUNTIME, limits=FUZZ_LIMITS)).include(path_regex="^/api/v1/")


@pytest.fixture(scope="module", autouse=True)
def _store() -> Iterator[None]:
    yield
    _RUNTIME.engine.dispose()
    shutil.rmtree(_HOME, ignore_errors=True)


FUZZ = settings(
    max_examples=3,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


# Operations whose schema still misstates a rule the server applies, each with the rule. They are still
# fuzzed with every check; a failure there is reported as an expected failure, any other fails the test.
# Fix the schema, then delete the entry.
KNOWN_GAPS = {
    "POST /api/v1/requests": "duration: '0' parses but must be longer than zero; no pattern states that",
    "POST /api/v1/bundles/{name}/requests": "duration: '0' must be longer than zero (as above)",
    "POST /api/v1/access/{grant_id}/extend": "by: '0' must be longer than zero (as above)",
    "PUT /api/v1/bundles/{name}": "targets: the union of target shapes is not a oneOf in the schema",
    "PUT /api/v1/scopes/{name}": "name: the path allows 200 characters, a scope name 120",
    "GET /api/v1/reports/access": "until: a number is taken where the schema says date-time",
    # OpenAPI cannot say that a query string holds no other names; the server ignores unknown ones.
    "GET /api/v1/resources": "unknown query parameters are ignored, not refused",
    "GET /api/v1/identities": "unknown query parameters are ignored, not refused",
    "GET /api/v1/groups": "unknown query parameters are ignored, not refused",
    # A rule across the path and the body that no JSON schema can state.
    "PUT /api/v1/identities/{email}": "an identity cannot be its own manager",
    "PATCH /api/v1/identities/{email}": "an identity cannot be its own manager",
    # The edge refuses a body over 1 MiB with 413 before the model sees it; schemathesis counts a 413
    # answer to an over-long list as accepting it.
    "POST /api/v1/tags/batch": "a body over the 1 MiB edge limit is answered 413",
    "PUT /api/v1/groups/{name}": "a body over the 1 MiB edge limit is answered 413",
    "PATCH /api/v1/groups/{name}": "a body over the 1 MiB edge limit is answered 413",
}


def call_as(who: str, case: Case) -> None:
    try:
        case.call_and_validate(headers={"Authorization": f"Bearer {_TOKENS[who]}"}, checks=ALL_CHECKS)
    except FailureGroup:
        gap = KNOWN_GAPS.get(case.operation.label)
        if gap is None:
            raise
        pytest.xfail(gap)


@schema.parametrize()
@FUZZ
def test_api_conforms_to_its_schema_as_admin(case: Case) -> None:
    call_as("root", case)


@schema.parametrize()
@FUZZ
def test_api_conforms_to_its_schema_as_user(case: Case) -> None:
    """A plain user meets the 403 and 404 answers the admin never sees."""
    call_as("alice", case)
