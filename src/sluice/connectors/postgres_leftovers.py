"""What retiring a PostgreSQL integration removes besides the login roles: the shared privilege
roles (`{prefix}p_{hash}`) Sluice made for its resources, with every privilege and default privilege
they hold, in every database.

A privilege role is this integration's when its COMMENT names a resource path of the integration
(`sluice privilege: {integration}/…`). The role carries no installation id, so two installations of
Sluice on one server under the same integration name share it: a role that still has members (a login
of another installation, or anything granted to it by hand) is kept and reported, never dropped."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql

from sluice.connectors import postgres_sql as q
from sluice.connectors.base import Leftovers

Borrow = Callable[[str | None], AbstractContextManager[psycopg.Connection[Any]]]

_MEMBERS = sql.SQL(
    "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
    " WHERE m.roleid = %s ORDER BY r.rolname"
)


def privilege_roles(admin: psycopg.Connection[Any], prefix: str, integration: str) -> list[tuple[str, int]]:
    """(name, oid) of every privilege role made for a resource of this integration."""
    mark = q.privilege_comment(f"{integration}/", "").rstrip()
    rows = admin.execute(
        sql.SQL(
            "SELECT rolname, oid, shobj_description(oid, 'pg_authid') FROM pg_roles"
            " WHERE starts_with(rolname, %s) ORDER BY rolname"
        ),
        [prefix + "p_"],
    ).fetchall()
    return [(name, oid) for name, oid, comment in rows if (comment or "").startswith(mark)]


def remove_privilege_roles(
    borrow: Borrow, *, prefix: str, integration: str, maintenance_db: str
) -> Leftovers:
    removed: list[str] = []
    kept: list[str] = []
    with borrow(None) as admin:
        for role, oid in privilege_roles(admin, prefix, integration):
            members = [r[0] for r in admin.execute(_MEMBERS, [oid])]
            if members:
                kept.append(f"{role}: still granted to {', '.join(members[:5])}")
                continue
            ident = sql.Identifier(role)
            # DROP OWNED takes away the role's privileges and default privileges in the database it
            # runs in, and on shared objects (CONNECT on a database) wherever it runs.
            for db in [r[0] for r in admin.execute(q.ROLE_DATABASES, [maintenance_db, oid])]:
                with borrow(None if db == admin.info.dbname else db) as conn, conn.transaction():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            removed.append(role)
    return Leftovers(removed=removed, kept=kept)
