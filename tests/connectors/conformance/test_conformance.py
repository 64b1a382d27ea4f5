"""The connector conformance suite: every check of `sluice.connectors.conformance` against every
connector, each on its real server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sluice.connectors.conformance import CHECKS, ConnectorHarness


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_conformance(check: Callable[[ConnectorHarness], None], harness: ConnectorHarness) -> None:
    check(harness)
