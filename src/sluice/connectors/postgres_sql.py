"""Pure helpers of the PostgreSQL connector: resource paths, comment tags, SCRAM verifiers, role names
and the composed SQL of the privilege roles. No I/O here; every identifier goes through
`psycopg.sql.Identifier` and every value through `psycopg.sql.Literal` or a placeholder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

# Paths and tags are shared by every connector; re-exported here for the PostgreSQL modules.
from sluice.connectors.paths import parse_tags as parse_tags
from sluice.connectors.paths import path_segment as path_segment
from sluice.connectors.paths import segment_name as segment_name

# --- SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677), computed here so the server never sees a password


def _saslprep(password: str) -> str:
    """RFC 4013 SASLprep as PostgreSQL applies it: ASCII passes unchanged; a password that SASLprep
    refuses is used as it is (PostgreSQL and libpq do the same, so both sides agree)."""
    if password.isascii():
        return password
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in password if not stringprep.in_table_b1(ch)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_a1,
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    if not prepared or any(test(ch) for ch in prepared for test in prohibited):
        return password
    if any(stringprep.in_table_d1(ch) for ch in prepared) and (
        any(stringprep.in_table_d2(ch) for ch in prepared)
        or not stringprep.in_table_d1(prepared[0])
        or not stringprep.in_table_d1(prepared[-1])
    ):
        return password
    return prepared


# The iteration count of the verifiers Sluice writes. PBKDF2's iterations slow down guessing a
# password from a stolen verifier; a grant's password is 192 random bits (`secrets.token_urlsafe(24)`),
# which no number of guesses reaches, so iterations would only cost time on every grant and every
# login. See docs/security.md ("Generated passwords").
GRANT_SCRAM_ITERATIONS = 1


def scram_sha256_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, the form `pg_authid` stores."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", _saslprep(password).encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# --- privilege roles


@dataclass(frozen=True)
class Target:
    """A resource as names in the target: a database, a schema in it, or a table in that."""

    database: str
    schema: str | None = None
    table: str | None = None

    @property
    def type(self) -> str:
        return "table" if self.table is not None else "schema" if self.schema is not None else "database"


def privilege_role_name(prefix: str, path: str, permission: str) -> str:
    digest = hashlib.sha256(f"{path}\0{permission}".encode()).hexdigest()[:16]
    return f"{prefix}p_{digest}"


def privilege_comment(path: str, permission: str) -> str:
    return f"sluice privilege: {path} {permission}"


def grant_comment(grant_id: str, integration: str, installation: str) -> str:
    return f"sluice grant {grant_id} installation {installation} integration {integration}"


@dataclass(frozen=True)
class GrantMark:
    """What a login role's marker comment says. `installation` is None on a legacy marker, written
    before markers named their installation: `sluice grant {id} integration {name}`."""

    grant_id: str
    installation: str | None


def parse_grant_comment(comment: str | None, integration: str) -> GrantMark | None:
    """The grant (and installation) in a login role's marker comment, when it names this integration."""
    head = "sluice grant "
    if not comment or not comment.startswith(head):
        return None
    grant_id, _, rest = comment[len(head) :].partition(" ")
    installation = None
    if rest.startswith("installation "):
        installation, _, rest = rest[len("installation ") :].partition(" ")
    if not grant_id or installation == "" or rest != f"integration {integration}":
        return None
    return GrantMark(grant_id, installation)


_TABLE_RIGHTS = {"read": ("SELECT",), "write": ("SELECT", "INSERT", "UPDATE", "DELETE")}


def database_grants(target: Target, role: str) -> list[sql.Composed]:
    """Run on a connection to any database of the cluster."""
    return [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(target.database), sql.Identifier(role)
        )
    ]


def object_grants(
    target: Target,
    permission: str,
    role: str,
    *,
    default_owners: Sequence[str] = (),
    sequences: Sequence[tuple[str, str]] = (),
) -> list[sql.Composed]:
    """Run on a connection to the target's own database. `default_owners` are the roles whose future
    tables a schema grant covers (ALTER DEFAULT PRIVILEGES); `sequences` are a table's own sequences."""
    if target.schema is None:
        return []
    role_id, schema_id = sql.Identifier(role), sql.Identifier(target.schema)
    rights = sql.SQL(", ").join(sql.SQL(r) for r in _TABLE_RIGHTS[permission])
    statements: list[sql.Composed] = [sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role_id)]
    if target.table is not None:
        statements.append(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                rights, sql.Identifier(target.schema, target.table), role_id
            )
        )
        if permission == "write":
            statements.extend(
                sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(*seq), role_id)
                for seq in sequences
            )
        return statements
    statements.append(sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(rights, schema_id, role_id))
    if permission == "write":
        statements.append(
            sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(schema_id, role_id)
        )
    for owner in [None, *default_owners]:
        for_role = sql.SQL("FOR ROLE {} ").format(sql.Identifier(owner)) if owner else sql.SQL("")
        head = sql.SQL("ALTER DEFAULT PRIVILEGES {}IN SCHEMA {} GRANT ").format(for_role, schema_id)
        statements.append(head + sql.SQL("{} ON TABLES TO {}").format(rights, role_id))
        if permission == "write":
            statements.append(head + sql.SQL("USAGE ON SEQUENCES TO {}").format(role_id))
    return statements


def _held(catalog: str, acl: str, where: sql.Composable, rights: Sequence[str]) -> sql.Composed:
    """True when role `r` holds every one of `rights` directly in the ACL of the object `where` picks."""
    return sql.SQL(
        "(SELECT count(DISTINCT a.privilege_type) FROM {} o, aclexplode(o.{}) a"
        " WHERE {} AND a.grantee = r.oid AND a.privilege_type = ANY({})) = {}"
    ).format(
        sql.Identifier(catalog),
        sql.Identifier(acl),
        where,
        sql.Literal(list(rights)),
        sql.Literal(len(rights)),
    )


def privilege_ready(target: Target, permission: str, role: str) -> sql.Composed | None:
    """A query answering whether privilege role `role` already holds everything `object_grants` and
    `database_grants` give it for a database or a table (read from the ACLs themselves, so a table
    dropped and made again, or a privilege revoked by hand, reads as not ready). Run on a connection to
    the target's database. None for a schema: its default privileges cannot be read back this way."""
    if target.schema is not None and target.table is None:
        return None
    checks = [
        _held(
            "pg_database",
            "datacl",
            sql.SQL("o.datname = {}").format(sql.Literal(target.database)),
            ["CONNECT"],
        )
    ]
    if target.schema is not None and target.table is not None:
        checks.append(
            _held(
                "pg_namespace",
                "nspacl",
                sql.SQL("o.nspname = {}").format(sql.Literal(target.schema)),
                ["USAGE"],
            )
        )
        regclass = sql.SQL("to_regclass({})").format(
            sql.Literal(sql.Identifier(target.schema, target.table).as_string(None))
        )
        table = sql.SQL("o.oid = {}").format(regclass)
        checks.append(_held("pg_class", "relacl", table, _TABLE_RIGHTS[permission]))
        if permission == "write":  # and USAGE on each of the table's own sequences
            checks.append(
                sql.SQL(
                    "NOT EXISTS (SELECT FROM pg_depend d"
                    " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
                    " WHERE d.refobjid = {} AND d.refclassid = 'pg_class'::regclass"
                    " AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
                    " AND NOT EXISTS (SELECT FROM aclexplode(s.relacl) a"
                    " WHERE a.grantee = r.oid AND a.privilege_type = 'USAGE'))"
                ).format(regclass)
            )
    return sql.SQL("SELECT {} FROM pg_roles r WHERE r.rolname = {}").format(
        sql.SQL(" AND ").join(checks), sql.Literal(role)
    )


# --- catalogue queries (values are placeholders)

DATABASES = sql.SQL(
    "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
    " WHERE NOT datistemplate AND datallowconn ORDER BY datname"
)
# Schemas that are PostgreSQL's own (and temporary/TOAST ones) are never offered as resources.
_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND NOT starts_with(n.nspname, 'pg_toast') AND NOT starts_with(n.nspname, 'pg_temp')"
)
SCHEMAS = sql.SQL(
    "SELECT n.nspname, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n"
    " WHERE " + _USER_SCHEMA + " ORDER BY n.nspname"
)
# Tables, partitioned tables, views, materialized views and foreign tables; partitions are reached
# through their parent and are not offered on their own.
TABLES = sql.SQL(
    "SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition"
    " AND " + _USER_SCHEMA + " ORDER BY n.nspname, c.relname"
)
# Owner of a schema when the current role may set default privileges for it (is a member of it).
SCHEMA_OWNER = sql.SQL(
    "SELECT pg_get_userbyid(nspowner) FROM pg_namespace"
    " WHERE nspname = %s AND nspowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    " AND pg_has_role(nspowner, 'MEMBER')"
)
# Sequences that belong to a table's columns (serial or identity).
TABLE_SEQUENCES = sql.SQL(
    "SELECT sn.nspname, s.relname FROM pg_class t"
    " JOIN pg_namespace tn ON tn.oid = t.relnamespace"
    " JOIN pg_depend d ON d.refobjid = t.oid AND d.refclassid = 'pg_class'::regclass"
    "  AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
    " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
    " JOIN pg_namespace sn ON sn.oid = s.relnamespace"
    " WHERE tn.nspname = %s AND t.relname = %s"
)
# Serializes GRANTs that touch the same catalogue rows (concurrent GRANTs on one object fail with
# "tuple concurrently updated"); held to the end of the transaction.
LOCK = sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))")


def lock_key(target: Target) -> str:
    """Grants on a schema and on its tables touch the same tables' ACLs, so they share one key."""
    names = [target.database] if target.schema is None else [target.database, target.schema]
    return "sluice-grant/" + "/".join(path_segment(n) for n in names)


ROLE = sql.SQL("SELECT oid, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s")
MANAGED_ROLES = sql.SQL(
    "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles"
    " WHERE starts_with(rolname, %s) ORDER BY rolname"
)
# Databases where a role owns objects or holds privileges, plus the one named, that can be entered.
ROLE_DATABASES = sql.SQL(
    "SELECT datname FROM pg_database WHERE datallowconn AND (datname = %s OR oid IN"
    " (SELECT dbid FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass AND refobjid = %s))"
    " ORDER BY datname"
)
# Ends every session of a role in the whole cluster, waiting up to %s ms for each to be gone.
TERMINATE = sql.SQL(
    "SELECT pg_terminate_backend(pid, %s) FROM pg_stat_activity"
    " WHERE usename = %s AND pid <> pg_backend_pid()"
)
ADMIN_ROLE = sql.SQL(
    "SELECT rolsuper, rolcreaterole, pg_has_role('pg_signal_backend', 'MEMBER')"
    " FROM pg_roles WHERE rolname = current_user"
)
