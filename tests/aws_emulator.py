"""The AWS emulator the aws connector is tested against: moto's server as its own process on a free
port (boto3 reaches it by endpoint URL, as it would reach AWS), holding an organization built here."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.target_servers import free_port, stop, wait_for_port

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class AwsOrg:
    endpoint: str
    root_id: str
    ous: dict[str, str] = field(default_factory=dict)  # name -> id
    accounts: dict[str, str] = field(default_factory=dict)  # name -> id
    permission_sets: dict[str, str] = field(default_factory=dict)  # name -> arn
    users: dict[str, str] = field(default_factory=dict)  # email -> user id
    groups: dict[str, str] = field(default_factory=dict)  # name -> group id
    instance_arn: str = ""
    identity_store_id: str = ""

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION, **KEYS)

    def config(self, **more: Any) -> dict[str, Any]:
        """An aws connector config for this organization, with the emulator's test keys."""
        return {
            "region": REGION,
            "endpoint_url": self.endpoint,
            "access_key_id": {"env": "SLUICE_TEST_AWS_KEY_ID"},
            "secret_access_key": {"env": "SLUICE_TEST_AWS_SECRET"},
            "assignment_timeout_seconds": 10,
            **more,
        }

    def add_ou(self, name: str, parent: str | None = None, tags: dict[str, str] | None = None) -> str:
        org = self.client("organizations")
        parent_id = self.ous[parent] if parent else self.root_id
        ou_id = org.create_organizational_unit(ParentId=parent_id, Name=name)["OrganizationalUnit"]["Id"]
        if tags:
            org.tag_resource(ResourceId=ou_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        self.ous[name] = ou_id
        return str(ou_id)

    def add_account(self, name: str, ou: str | None, tags: dict[str, str] | None = None) -> str:
        org = self.client("organizations")
        asked: dict[str, Any] = {"Email": f"{name}-{secrets.token_hex(3)}@example.com", "AccountName": name}
        if tags:
            asked["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        account_id = str(org.create_account(**asked)["CreateAccountStatus"]["AccountId"])
        if ou:
            self.move(account_id, ou)
        self.accounts[name] = account_id
        return account_id

    def move(self, account_id: str, ou: str | None) -> None:
        org = self.client("organizations")
        source = org.list_parents(ChildId=account_id)["Parents"][0]["Id"]
        target = self.ous[ou] if ou else self.root_id
        org.move_account(AccountId=account_id, SourceParentId=source, DestinationParentId=target)

    def add_user(self, email: str) -> str:
        store = self.client("identitystore")
        name = email.split("@")[0]
        user_id = str(
            store.create_user(
                IdentityStoreId=self.identity_store_id,
                UserName=email,
                DisplayName=name,
                Name={"GivenName": name, "FamilyName": "Example"},
                Emails=[{"Value": email, "Primary": True}],
            )["UserId"]
        )
        self.users[email] = user_id
        return user_id

    def assigned(self, account: str, permission_set: str, email: str) -> bool:
        found = self.client("sso-admin").list_account_assignments(
            InstanceArn=self.instance_arn,
            AccountId=self.accounts.get(account, account),
            PermissionSetArn=self.permission_sets[permission_set],
        )["AccountAssignments"]
        return any(a["PrincipalId"] == self.users[email] for a in found)


@pytest.fixture(scope="session")
def aws_org() -> Iterator[AwsOrg]:
    """moto's server with an organization: OUs prod (with prod/eu) and staging, accounts, permission
    sets ReadOnly and Admin, Identity Center users for the test people, and group oncall-admins."""
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    if not os.path.exists(binary):
        pytest.fail("moto_server is not installed (pip install 'moto[server]'; make test does)")
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"sluice-moto-{port}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    os.environ["SLUICE_TEST_AWS_KEY_ID"], os.environ["SLUICE_TEST_AWS_SECRET"] = "testing", "testing"
    try:
        if not wait_for_port(port, 30):
            process.kill()
            pytest.fail(f"moto_server did not start: {log_path.read_text(errors='replace')[-2000:]}")
        yield _build(f"http://127.0.0.1:{port}")
    finally:
        stop(process)
        log.close()
        log_path.unlink(missing_ok=True)


def _build(endpoint: str) -> AwsOrg:
    organizations = boto3.client("organizations", endpoint_url=endpoint, region_name=REGION, **KEYS)
    organizations.create_organization(FeatureSet="ALL")
    org = AwsOrg(endpoint, organizations.list_roots()["Roots"][0]["Id"])
    instance = org.client("sso-admin").list_instances()["Instances"][0]
    org.instance_arn, org.identity_store_id = instance["InstanceArn"], instance["IdentityStoreId"]
    org.add_ou("prod", tags={"env": "prod"})
    org.add_ou("eu", parent="prod")
    org.add_ou("staging", tags={"env": "staging"})
    org.add_account("payments", "prod", tags={"pii": "true"})
    org.add_account("web", "eu")
    org.add_account("analytics", "staging", tags={"pii": "true"})
    sso = org.client("sso-admin")
    for name in ("ReadOnly", "Admin"):
        created = sso.create_permission_set(InstanceArn=org.instance_arn, Name=name, SessionDuration="PT1H")
        org.permission_sets[name] = created["PermissionSet"]["PermissionSetArn"]
    for email in ("ada@example.com", "carol@example.com", "alice@example.com", "bob@example.com"):
        org.add_user(email)
    group = org.client("identitystore").create_group(
        IdentityStoreId=org.identity_store_id, DisplayName="oncall-admins"
    )
    org.groups["oncall-admins"] = group["GroupId"]
    return org
