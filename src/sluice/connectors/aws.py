"""AWS connector: IAM Identity Center access to the accounts of an AWS Organization.

Discovery (`aws_discovery.py`) maps the organization: OUs, accounts, and under each account the
permission sets that may be granted there; Identity Center groups the config offers. A grant on a
permission set creates the account assignment (account + permission set + the grantee's Identity
Center user, found by email) and waits until AWS says it is done; a grant on a group adds a temporary
membership. Revoking deletes them. The grantee's connection is the AWS access portal.

AWS keeps no comment on an assignment, so Sluice records each one it makes in its ledger: an SSM
parameter `{ledger_path}/aws_{tag}_{grant hex}` in the management account (the tag names installation
and integration, as the other connectors' principals do). `list_managed` reads the ledger, so the
orphan sweep only ever touches what this installation made. An assignment that existed before the grant
(made by hand) or that another grant still needs (another installation's, say) is left in place when
the grant ends: the ledger says so.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from pydantic import BaseModel

from sluice.connectors.aws_clients import AwsClients, AwsConfig, aws_call, error_code, pages
from sluice.connectors.aws_discovery import Discovery, Grantable, IdentityCenter, identity_center
from sluice.connectors.base import AccessUnit, ConnectorContext, DiscoveredResource, ManagedPrincipal
from sluice.connectors.support import managed_by_name, require_own_name, tagged_principal
from sluice.domain.errors import TargetError

PREFIX = "aws_"
KIND_OF_PERMISSION = {"assigned": "assignment", "member": "membership"}


class AwsConnector:
    kind: ClassVar[str] = "aws"
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {
        "ou": (),
        "account": (),
        "permission_set": ("assigned",),
        "group": ("member",),
    }
    issues_secret: ClassVar[bool] = False
    config_model: ClassVar[type[BaseModel]] = AwsConfig

    def __init__(self, name: str, config: BaseModel, context: ConnectorContext) -> None:
        assert isinstance(config, AwsConfig)
        self.name, self.config, self.context = name, config, context
        self.clients = AwsClients(config)
        self._center: IdentityCenter | None = None
        self._grantable: dict[str, Grantable] = {}

    # --- the contract

    def principal_for(self, grant_id: str, grantee_email: str) -> str:
        return tagged_principal(PREFIX, self.name, self.context.installation, grant_id)

    def discover(self) -> list[DiscoveredResource]:
        walk = Discovery(self.name, self.clients, self.config, self.center)
        found = walk.resources()
        self._grantable = walk.grantable
        return found

    def grant(self, unit: AccessUnit) -> dict[str, Any]:
        principal = self._own(unit)
        entry = self._ledger_get(principal)
        if entry is None:
            what = self._what(unit.resource_path, unit.permission)
            entry = {
                "grant_id": unit.grant_id,
                "kind": what.kind,
                "account_id": what.account_id,
                "permission_set_arn": what.permission_set_arn,
                "permission_set": what.permission_set,
                "group_id": what.group_id,
                "group": what.group,
                "user_id": self._user_id(unit.grantee_email),
            }
            entry["pre_existing"] = self._exists(entry) and not self._held_by_others(entry, principal)
            self._ledger_put(principal, entry)
        if not self._exists(entry):
            self._create(entry)
        return self._details(entry)

    def revoke(self, unit: AccessUnit) -> None:
        principal = self._own(unit)
        entry = self._ledger_get(principal)
        if entry is None:
            return  # never granted, or already revoked
        if not entry["pre_existing"] and not self._held_by_others(entry, principal) and self._exists(entry):
            self._delete(entry)
        aws_call("forget the assignment", self.clients.ssm.delete_parameter, Name=self._parameter(principal))

    def list_managed(self) -> list[ManagedPrincipal]:
        found = []
        for principal, entry in self._ledger().items():
            mine = managed_by_name(PREFIX, self.name, self.context.installation, principal)
            if mine is not None and not mine.legacy:
                found.append(ManagedPrincipal(principal, entry.get("grant_id")))
        return found

    def check(self) -> list[str]:
        try:
            _ = self.center
            aws_call("list the organization's roots", self.clients.organizations.list_roots)
            self._ledger()
        except TargetError as exc:
            return [exc.detail]
        return []

    # --- AWS, one thing at a time

    @property
    def center(self) -> IdentityCenter:
        if self._center is None:
            self._center = identity_center(self.clients, self.config)
        return self._center

    def _own(self, unit: AccessUnit) -> str:
        return require_own_name(
            PREFIX, self.name, self.context.installation, unit.principal, unit.grant_id, "a grant"
        )

    def _what(self, path: str, permission: str) -> Grantable:
        if path not in self._grantable:
            self.discover()
        what = self._grantable.get(path)
        if what is None:
            raise TargetError(
                f"{path!r} is not a permission set or group that {self.name} offers", retryable=False
            )
        if KIND_OF_PERMISSION.get(permission) != what.kind:
            raise TargetError(f"{permission!r} cannot be granted on {path!r}", retryable=False)
        return what

    def _user_id(self, email: str) -> str:
        store = self.clients.identity_store
        for attribute in ("emails.value", "UserName"):
            try:
                found = aws_call(
                    "find the Identity Center user",
                    store.get_user_id,
                    IdentityStoreId=self.center.identity_store_id,
                    AlternateIdentifier={
                        "UniqueAttribute": {"AttributePath": attribute, "AttributeValue": email}
                    },
                )
                return str(found["UserId"])
            except TargetError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
        raise TargetError(
            f"{email} has no IAM Identity Center user (no user with that email or user name); "
            "create or provision one, then try again",
            retryable=False,
        )

    def _exists(self, entry: dict[str, Any]) -> bool:
        if entry["kind"] == "membership":
            return self._membership_id(entry) is not None
        assignments = pages(
            self.clients.sso_admin.list_account_assignments,
            "AccountAssignments",
            "list account assignments",
            InstanceArn=self.center.instance_arn,
            AccountId=entry["account_id"],
            PermissionSetArn=entry["permission_set_arn"],
        )
        return any(a["PrincipalType"] == "USER" and a["PrincipalId"] == entry["user_id"] for a in assignments)

    def _membership_id(self, entry: dict[str, Any]) -> str | None:
        memberships = pages(
            self.clients.identity_store.list_group_memberships,
            "GroupMemberships",
            "list the group's members",
            IdentityStoreId=self.center.identity_store_id,
            GroupId=entry["group_id"],
        )
        for membership in memberships:
            if membership.get("MemberId", {}).get("UserId") == entry["user_id"]:
                return str(membership["MembershipId"])
        return None

    def _assignment(self, entry: dict[str, Any]) -> dict[str, str]:
        return {
            "InstanceArn": self.center.instance_arn,
            "TargetId": entry["account_id"],
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": entry["permission_set_arn"],
            "PrincipalType": "USER",
            "PrincipalId": entry["user_id"],
        }

    def _create(self, entry: dict[str, Any]) -> None:
        if entry["kind"] == "membership":
            aws_call(
                "add the group membership",
                self.clients.identity_store.create_group_membership,
                IdentityStoreId=self.center.identity_store_id,
                GroupId=entry["group_id"],
                MemberId={"UserId": entry["user_id"]},
            )
            return
        sso = self.clients.sso_admin
        started = aws_call(
            "create the account assignment", sso.create_account_assignment, **self._assignment(entry)
        )
        self._wait(
            started["AccountAssignmentCreationStatus"],
            sso.describe_account_assignment_creation_status,
            "AccountAssignmentCreationRequestId",
            "AccountAssignmentCreationStatus",
        )

    def _delete(self, entry: dict[str, Any]) -> None:
        if entry["kind"] == "membership":
            membership = self._membership_id(entry)
            if membership is not None:
                aws_call(
                    "remove the group membership",
                    self.clients.identity_store.delete_group_membership,
                    IdentityStoreId=self.center.identity_store_id,
                    MembershipId=membership,
                )
            return
        sso = self.clients.sso_admin
        started = aws_call(
            "delete the account assignment", sso.delete_account_assignment, **self._assignment(entry)
        )
        self._wait(
            started["AccountAssignmentDeletionStatus"],
            sso.describe_account_assignment_deletion_status,
            "AccountAssignmentDeletionRequestId",
            "AccountAssignmentDeletionStatus",
        )

    def _wait(self, status: dict[str, Any], describe: Any, id_key: str, status_key: str) -> None:
        """Assignments are made asynchronously: poll until AWS says done, within the timeout."""
        deadline = time.monotonic() + self.config.assignment_timeout_seconds
        pause = 0.2
        while status.get("Status") == "IN_PROGRESS":
            if time.monotonic() > deadline:
                raise TargetError(
                    f"AWS is still working on request {status.get('RequestId')}; trying again later"
                )
            time.sleep(pause)
            pause = min(pause * 2, 5)
            asked = {"InstanceArn": self.center.instance_arn, id_key: status["RequestId"]}
            status = aws_call("read the assignment status", describe, **asked)[status_key]
        if status.get("Status") == "FAILED":
            raise TargetError(
                f"AWS refused the assignment: {status.get('FailureReason', 'no reason given')}",
                retryable=False,
            )

    def _details(self, entry: dict[str, Any]) -> dict[str, Any]:
        portal = self.config.portal_url or f"https://{self.center.identity_store_id}.awsapps.com/start"
        if entry["kind"] == "membership":
            return {"portal_url": portal, "group": entry["group"]}
        return {
            "portal_url": portal,
            "account_id": entry["account_id"],
            "permission_set": entry["permission_set"],
        }

    def _held_by_others(self, entry: dict[str, Any], principal: str) -> bool:
        """Whether another ledger entry (another grant, of any installation) needs the same access."""
        same = ("kind", "account_id", "permission_set_arn", "group_id", "user_id")
        return any(
            other != principal and all(them.get(k) == entry.get(k) for k in same)
            for other, them in self._ledger().items()
        )

    # --- the ledger: one SSM parameter per assignment Sluice made

    def _parameter(self, principal: str) -> str:
        return f"{self.config.ledger_path.rstrip('/')}/{principal}"

    def _ledger_get(self, principal: str) -> dict[str, Any] | None:
        try:
            found = aws_call(
                "read the ledger", self.clients.ssm.get_parameter, Name=self._parameter(principal)
            )
        except TargetError as exc:
            if error_code(exc) == "ParameterNotFound":
                return None
            raise
        entry: dict[str, Any] = json.loads(found["Parameter"]["Value"])
        return entry

    def _ledger_put(self, principal: str, entry: dict[str, Any]) -> None:
        aws_call(
            "write the ledger",
            self.clients.ssm.put_parameter,
            Name=self._parameter(principal),
            Value=json.dumps(entry, sort_keys=True),
            Type="String",
            Overwrite=True,
            Description=f"Sluice grant {entry['grant_id']} ({self.name})",
        )

    def _ledger(self) -> dict[str, dict[str, Any]]:
        """Every entry under the ledger path, of every installation and integration."""
        found: dict[str, dict[str, Any]] = {}
        path = self.config.ledger_path.rstrip("/") or "/"
        for parameter in pages(
            self.clients.ssm.get_parameters_by_path, "Parameters", "read the ledger", Path=path
        ):
            try:
                found[parameter["Name"].rsplit("/", 1)[-1]] = json.loads(parameter["Value"])
            except ValueError:
                continue  # not a Sluice entry
        return found
