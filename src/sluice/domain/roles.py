"""What a token may do beyond a person's own requests, grants and approvals.

| role | reads | acts |
|---|---|---|
| `user` | their own requests and grants, and what they approve | as themselves |
| `auditor` | everything: every request and grant, the audit log, reports | nothing more than a user |
| `operator` | everything | revokes any grant or request, syncs inventory, checks integrations |
| `admin` | everything | everything: directory, tags, bundles, scopes, extending and cancelling for others |

No role lets anyone approve: approvers come from the flows, and nobody approves access for themselves.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    USER = "user"
    AUDITOR = "auditor"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def reads_everything(self) -> bool:
        return self in (Role.AUDITOR, Role.OPERATOR, Role.ADMIN)

    @property
    def operates(self) -> bool:
        return self in (Role.OPERATOR, Role.ADMIN)

    @property
    def administers(self) -> bool:
        return self is Role.ADMIN
