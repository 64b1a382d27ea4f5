"""The aws connector's conformance harness: IAM Identity Center assignments in the AWS emulator."""

from __future__ import annotations

import secrets
from typing import Any

from sluice.connectors.aws import AwsConnector
from sluice.connectors.aws_clients import AwsConfig
from sluice.connectors.base import AccessUnit, Connector, ConnectorContext
from sluice.connectors.conformance import ConnectorHarness, Sample
from sluice.connectors.paths import segment_name
from tests.aws_emulator import AwsOrg

NAME = "conf-aws"
HOSTILE = "we \"ird\"; acct 'x'"


class AwsHarness(ConnectorHarness):
    def __init__(self, org: AwsOrg) -> None:
        self.org = org
        if HOSTILE not in org.accounts:
            org.add_account(HOSTILE, "staging")
        self.config = AwsConfig.model_validate(org.config(ledger_path=f"/sluice-test-{secrets.token_hex(4)}"))
        self.connector = AwsConnector(NAME, self.config, ConnectorContext(installation="test-install"))
        self.sample = Sample("permission_set", f"{NAME}/Root/prod/payments/ReadOnly", "assigned")
        self.hostile = Sample("permission_set", f"{NAME}/Root/staging/{HOSTILE}/Admin", "assigned")
        self.tagged = (f"{NAME}/Root/prod/payments", {"pii": "true", "account_id": org.accounts["payments"]})

    def _where(self, unit: AccessUnit) -> tuple[str, str]:
        account, permission_set = (segment_name(s) for s in unit.resource_path.split("/")[-2:])
        return self.org.accounts[account], permission_set

    def can_use(self, unit: AccessUnit, details: dict[str, Any]) -> bool:
        """Whether Identity Center assigns the permission set in the account to the grantee's user,
        as `list_account_assignments` says (the emulator has no sign-in to try)."""
        account_id, permission_set = self._where(unit)
        return self.org.assigned(account_id, permission_set, unit.grantee_email)

    def remove_by_hand(self, unit: AccessUnit) -> None:
        account_id, permission_set = self._where(unit)
        self.org.client("sso-admin").delete_account_assignment(
            InstanceArn=self.org.instance_arn,
            TargetId=account_id,
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=self.org.permission_sets[permission_set],
            PrincipalType="USER",
            PrincipalId=self.org.users[unit.grantee_email],
        )

    def pointed_at(self, port: int, timeout_seconds: float) -> Connector:
        config = self.config.model_copy(
            update={
                "endpoint_url": f"http://127.0.0.1:{port}",
                "connect_timeout_seconds": timeout_seconds,
                "timeout_seconds": timeout_seconds,
            }
        )
        return AwsConnector(NAME, config, self.connector.context)
