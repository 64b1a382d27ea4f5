"""The aws connector beyond the conformance suite, against the AWS emulator: people without an
Identity Center user, group memberships, access that existed before the grant, and AWS's errors."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from sluice.connectors.aws import AwsConnector
from sluice.connectors.aws_clients import AwsConfig, target_error
from sluice.connectors.base import AccessUnit, ConnectorContext
from sluice.domain.errors import TargetError
from tests.aws_emulator import AwsOrg


def connector(org: AwsOrg, **more: object) -> AwsConnector:
    config = AwsConfig.model_validate(
        org.config(ledger_path=f"/sluice-unit-{secrets.token_hex(4)}", groups=["oncall-admins"], **more)
    )
    return AwsConnector("aws-org", config, ConnectorContext(installation="aws-tests"))


def unit(
    c: AwsConnector, path: str, permission: str = "assigned", email: str = "ada@example.com"
) -> AccessUnit:
    grant_id = f"gr_{secrets.token_hex(6)}"
    return AccessUnit(
        grant_id=grant_id,
        principal=c.principal_for(grant_id, email),
        grantee_email=email,
        resource_type="group" if permission == "member" else "permission_set",
        resource_path=path,
        permission=permission,
        ends_at=datetime.now(UTC) + timedelta(hours=1),
    )


def members(org: AwsOrg) -> set[str]:
    found = org.client("identitystore").list_group_memberships(
        IdentityStoreId=org.identity_store_id, GroupId=org.groups["oncall-admins"]
    )["GroupMemberships"]
    return {m["MemberId"]["UserId"] for m in found}


def test_a_person_without_an_identity_center_user_gets_a_clear_lasting_error(aws_org: AwsOrg) -> None:
    c = connector(aws_org)
    asked = unit(c, "aws-org/Root/prod/payments/ReadOnly", email="nobody@example.com")
    with pytest.raises(TargetError, match="no IAM Identity Center user") as error:
        c.grant(asked)
    assert not error.value.retryable
    assert asked.principal not in {m.principal for m in c.list_managed()}


def test_a_temporary_group_membership_is_added_and_removed(aws_org: AwsOrg) -> None:
    c = connector(aws_org)
    paths = {r.path: r for r in c.discover()}
    assert paths["aws-org/groups/oncall-admins"].type == "group"
    asked = unit(c, "aws-org/groups/oncall-admins", "member", email="bob@example.com")
    details = c.grant(asked)
    assert details["group"] == "oncall-admins" and details["portal_url"].endswith(".awsapps.com/start")
    assert aws_org.users["bob@example.com"] in members(aws_org)
    c.revoke(asked)
    c.revoke(asked)
    assert aws_org.users["bob@example.com"] not in members(aws_org)


def test_access_made_by_hand_before_the_grant_is_left_in_place_when_the_grant_ends(aws_org: AwsOrg) -> None:
    c = connector(aws_org)
    sso = aws_org.client("sso-admin")
    by_hand = {
        "InstanceArn": aws_org.instance_arn,
        "TargetId": aws_org.accounts["analytics"],
        "TargetType": "AWS_ACCOUNT",
        "PermissionSetArn": aws_org.permission_sets["Admin"],
        "PrincipalType": "USER",
        "PrincipalId": aws_org.users["carol@example.com"],
    }
    sso.create_account_assignment(**by_hand)
    asked = unit(c, "aws-org/Root/staging/analytics/Admin", email="carol@example.com")
    c.grant(asked)
    c.revoke(asked)
    assert aws_org.assigned("analytics", "Admin", "carol@example.com"), (
        "Sluice removed access it did not make"
    )
    sso.delete_account_assignment(**by_hand)


def test_the_wrong_permission_for_a_resource_is_refused(aws_org: AwsOrg) -> None:
    c = connector(aws_org)
    with pytest.raises(TargetError, match="cannot be granted") as error:
        c.grant(unit(c, "aws-org/groups/oncall-admins", "assigned"))
    assert not error.value.retryable


def test_only_the_offered_permission_sets_are_discovered(aws_org: AwsOrg) -> None:
    c = connector(aws_org, permission_sets=["ReadOnly"])
    names = {r.name for r in c.discover() if r.type == "permission_set"}
    assert names == {"ReadOnly"}


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("ThrottlingException", 400, True),
        ("InternalServerException", 500, True),
        ("SomethingNew", 503, True),
        ("AccessDeniedException", 400, False),
        ("ResourceNotFoundException", 404, False),
        ("ValidationException", 400, False),
    ],
)
def test_aws_errors_say_whether_trying_again_helps(code: str, status: int, retryable: bool) -> None:
    exc = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )
    assert target_error("do it", exc).retryable is retryable


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="region"):
        AwsConfig.model_validate({"region": "mars"})
    with pytest.raises(ValidationError, match="arn"):
        AwsConfig.model_validate({"assume_role": {"arn": "not-an-arn"}})
