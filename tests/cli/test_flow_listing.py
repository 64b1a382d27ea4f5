"""`sluice flows` names who approves, whichever way the flow says it."""

from __future__ import annotations

from sluice.cli.catalog_commands import flow_row

FLOW = {
    "name": "dba",
    "requesters": [{"group": "dba"}],
    "targets": [{"integration": "pg", "type": "table", "permissions": ["read"]}],
}


def test_a_flow_written_with_approval_lists_its_approvers_tier_by_tier() -> None:
    approval = {
        "groups": [
            {"approvers": [{"integration_owner": True}]},
            {"approvers": [{"group": "dba"}], "count": 2},
        ],
        "escalation": [{"after": "30m", "groups": [{"approvers": [{"shift": "dba-oncall"}]}]}],
    }
    assert flow_row(FLOW | {"approval": approval})["approvers"] == [
        "the integration owner",
        "2 of group dba",
        "after 30m: on call for dba-oncall",
    ]


def test_the_older_approvers_list_and_no_approval_read_as_before() -> None:
    assert flow_row(FLOW | {"approvers": [{"manager": True}]})["approvers"] == ["manager"]
    assert flow_row(FLOW)["approvers"] == "none (automatic)"
