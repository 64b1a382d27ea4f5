"""Principal names that carry their installation: whose a name is, for the connectors whose targets
keep no comment on a user (MySQL/MariaDB, Redis, HTTP)."""

from __future__ import annotations

import pytest

from sluice.connectors.base import ConnectorContext, ManagedPrincipal
from sluice.connectors.support import (
    integration_tag,
    managed_by_name,
    require_own_name,
    tagged_principal,
)
from sluice.domain.errors import TargetError

GRANT = "gr_0123456789ab"


def test_a_name_says_which_installation_integration_and_grant_made_it() -> None:
    ours = tagged_principal("sluice_", "prod-db", "install-a", GRANT)
    assert managed_by_name("sluice_", "prod-db", "install-a", ours) == ManagedPrincipal(ours, GRANT)
    assert managed_by_name("sluice_", "prod-db", "install-b", ours) is None  # another installation's
    assert managed_by_name("sluice_", "other-db", "install-a", ours) is None  # another integration's
    assert tagged_principal("sluice_", "prod-db", "install-b", GRANT) != ours


def test_a_legacy_name_is_reported_as_legacy_to_every_installation() -> None:
    legacy = f"sluice_{integration_tag('prod-db')}_0123456789ab"
    for installation in ("install-a", "install-b"):
        found = managed_by_name("sluice_", "prod-db", installation, legacy)
        assert found == ManagedPrincipal(legacy, GRANT, legacy=True)
    assert require_own_name("sluice_", "prod-db", "install-a", legacy, GRANT, "a user") == legacy


def test_a_grant_or_revoke_refuses_another_installations_name() -> None:
    theirs = tagged_principal("sluice_", "prod-db", "install-b", GRANT)
    with pytest.raises(TargetError) as caught:
        require_own_name("sluice_", "prod-db", "install-a", theirs, GRANT, "a user")
    assert caught.value.retryable is False
    ours = tagged_principal("sluice_", "prod-db", "install-a", GRANT)
    with pytest.raises(TargetError):
        require_own_name("sluice_", "prod-db", "install-a", ours, "gr_ffffffffffff", "a user")


def test_the_longest_name_fits_mysql() -> None:
    assert len(tagged_principal("a" * 12, "prod-db", "install-a", GRANT)) <= 32


@pytest.mark.parametrize("bad", ["", "abc", "Upper-case", "-leading", "has space", "x" * 33])
def test_an_installation_id_is_plain(bad: str) -> None:
    with pytest.raises(ValueError):
        ConnectorContext(installation=bad)
