"""What `sluice plan --drift` reports: objects the store holds that the file lacks or describes otherwise."""

from __future__ import annotations

from sluice.services.config.drift import Drift, drift
from sluice.services.config.file import parse_config
from tests.services.config_samples import GOOD, edit


def test_a_file_and_its_own_store_do_not_drift() -> None:
    assert drift(parse_config(GOOD, "store"), parse_config(GOOD, "file")) == []


def test_changed_and_extra_objects_are_named_with_the_fields_that_differ() -> None:
    store = edit(GOOD, "    approvers: [{manager: true}]", "    approvers: [{user: bob@example.com}]")
    store = edit(
        store,
        "    description: Product engineers\n",
        "    description: Product engineers\n  - name: auditors\n",
    )
    found = drift(parse_config(store, "store"), parse_config(GOOD, "file"))
    assert found == [Drift("group", "auditors"), Drift("flow", "engineering-read-pg", ("approvers",))]
    assert found[1].describe() == "flow engineering-read-pg: the store differs from the file in approvers"


def test_objects_only_the_file_has_are_not_drift() -> None:
    smaller = edit(GOOD, "  - name: engineering\n    description: Product engineers\n", "")
    assert drift(parse_config(smaller, "store"), parse_config(GOOD, "file")) == []
