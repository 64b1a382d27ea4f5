"""What the AWS connector finds: the organization's tree and what Identity Center can grant in it.

Paths follow the organization: `{integration}/Root/{ou}/{ou}/…/{account}/{permission set}`, so a flow
`under: [aws-org/Root/prod]` covers every account in OU `prod` at any depth, today's and tomorrow's,
and an account moved out of it leaves its coverage at the next sync. Identity Center groups that the
config offers are at `{integration}/groups/{group}`.

Tags come from AWS Organizations: an OU's and an account's own tags; a permission set under an account
carries its account's tags (and `account_id`, `permission_set`), so `tags: ["pii=true"]` on type
`permission_set` means "any permission set in an account tagged pii=true".
"""

from __future__ import annotations

from dataclasses import dataclass

from sluice.connectors.aws_clients import AwsClients, AwsConfig, aws_call, pages
from sluice.connectors.base import DiscoveredResource
from sluice.connectors.paths import path_segment
from sluice.domain.errors import TargetError


@dataclass(frozen=True)
class Grantable:
    """What one grantable path means in AWS."""

    kind: str  # "assignment" (account + permission set) or "membership" (group)
    account_id: str = ""
    permission_set_arn: str = ""
    permission_set: str = ""
    group_id: str = ""
    group: str = ""


@dataclass(frozen=True)
class IdentityCenter:
    instance_arn: str
    identity_store_id: str


def identity_center(clients: AwsClients, config: AwsConfig) -> IdentityCenter:
    if config.instance_arn and config.identity_store_id:
        return IdentityCenter(config.instance_arn, config.identity_store_id)
    found = aws_call("list IAM Identity Center instances", clients.sso_admin.list_instances)["Instances"]
    if config.instance_arn:
        found = [i for i in found if i["InstanceArn"] == config.instance_arn]
    if len(found) != 1:
        raise TargetError(
            f"found {len(found)} IAM Identity Center instances; "
            "name one with instance_arn and identity_store_id",
            retryable=False,
        )
    return IdentityCenter(found[0]["InstanceArn"], config.identity_store_id or found[0]["IdentityStoreId"])


def _tags(clients: AwsClients, resource_id: str) -> dict[str, str]:
    found = pages(clients.organizations.list_tags_for_resource, "Tags", "read tags", ResourceId=resource_id)
    return {t["Key"]: t["Value"] for t in found}


class Discovery:
    """One walk of the organization and of Identity Center; `grantable` maps each path it found."""

    def __init__(self, name: str, clients: AwsClients, config: AwsConfig, center: IdentityCenter) -> None:
        self.name, self.clients, self.config, self.center = name, clients, config, center
        self.grantable: dict[str, Grantable] = {}

    def resources(self) -> list[DiscoveredResource]:
        found: list[DiscoveredResource] = []
        permission_sets = self._permission_sets()
        org = self.clients.organizations
        for root in pages(org.list_roots, "Roots", "list the organization's roots"):
            path = f"{self.name}/{path_segment(root['Name'])}"
            found.append(DiscoveredResource("ou", root["Name"], path, None, {"ou_id": root["Id"]}))
            self._walk(root["Id"], path, permission_sets, found)
        found += self._groups()
        return found

    def _walk(
        self,
        parent_id: str,
        parent_path: str,
        permission_sets: dict[str, str],
        found: list[DiscoveredResource],
    ) -> None:
        org = self.clients.organizations
        taken: set[str] = set()
        for ou in pages(
            org.list_organizational_units_for_parent, "OrganizationalUnits", "list OUs", ParentId=parent_id
        ):
            path = f"{parent_path}/{path_segment(ou['Name'])}"
            taken.add(path)
            tags = {**_tags(self.clients, ou["Id"]), "ou_id": ou["Id"]}
            found.append(DiscoveredResource("ou", ou["Name"], path, parent_path, tags))
            self._walk(ou["Id"], path, permission_sets, found)
        for account in pages(org.list_accounts_for_parent, "Accounts", "list accounts", ParentId=parent_id):
            if account.get("Status", "ACTIVE") != "ACTIVE":
                continue  # suspended or closing: nothing to grant there
            path = f"{parent_path}/{path_segment(account['Name'])}"
            if path in taken:  # an OU of the same name beside it
                path = f"{parent_path}/{path_segment(account['Name'] + ' (' + account['Id'] + ')')}"
            tags = {**_tags(self.clients, account["Id"]), "account_id": account["Id"]}
            found.append(DiscoveredResource("account", account["Name"], path, parent_path, tags))
            for ps_name, ps_arn in sorted(permission_sets.items()):
                ps_path = f"{path}/{path_segment(ps_name)}"
                ps_tags = {**tags, "permission_set": ps_name}
                found.append(DiscoveredResource("permission_set", ps_name, ps_path, path, ps_tags))
                self.grantable[ps_path] = Grantable(
                    "assignment", account_id=account["Id"], permission_set_arn=ps_arn, permission_set=ps_name
                )

    def _permission_sets(self) -> dict[str, str]:
        sso = self.clients.sso_admin
        arns = pages(
            sso.list_permission_sets,
            "PermissionSets",
            "list permission sets",
            InstanceArn=self.center.instance_arn,
        )
        found: dict[str, str] = {}
        for arn in arns:
            described = aws_call(
                "describe a permission set",
                sso.describe_permission_set,
                InstanceArn=self.center.instance_arn,
                PermissionSetArn=arn,
            )["PermissionSet"]
            found[described["Name"]] = arn
        offered = self.config.permission_sets
        return found if offered is None else {n: a for n, a in found.items() if n in offered}

    def _groups(self) -> list[DiscoveredResource]:
        if not self.config.groups:
            return []
        head = f"{self.name}/groups"
        found = []
        store = self.clients.identity_store
        wanted = set(self.config.groups)
        for group in pages(
            store.list_groups,
            "Groups",
            "list Identity Center groups",
            IdentityStoreId=self.center.identity_store_id,
        ):
            if group.get("DisplayName") not in wanted:
                continue
            path = f"{head}/{path_segment(group['DisplayName'])}"
            found.append(
                DiscoveredResource("group", group["DisplayName"], path, head, {"group_id": group["GroupId"]})
            )
            self.grantable[path] = Grantable(
                "membership", group_id=group["GroupId"], group=group["DisplayName"]
            )
        return found
