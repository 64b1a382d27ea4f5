"""`directory_sources:` in the config file (the section's shape is `directory/ldap_config.py`): checks
across the document, and applying it. Applying stores each source; the worker reads the directory on
its interval, and `sluice directory sync` at once. Removing a source from the file deactivates its
people and takes away its groups' memberships (nothing would keep them current any more)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.connectors.base import SecretRef
from sluice.domain.durations import format_duration
from sluice.domain.errors import InvalidInput
from sluice.services.config.source import ConfigPath
from sluice.services.directory.ldap_config import LdapSourceConfig
from sluice.services.directory.ldap_reader import DirectorySnapshot
from sluice.services.directory.ldap_sync import apply_snapshot
from sluice.services.directory.sources import LDAP_PREFIX
from sluice.store.directory_tables import DirectorySource
from sluice.store.types import new_id

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument

CONFIG_SOURCE = "config"
LDAP_KIND = "ldap"


def directory_source_problems(checker: Any, doc: ConfigDocument) -> None:
    """Add to `checker` (config checks) a problem for each source name declared twice."""
    first: dict[str, int] = {}
    for index, spec in enumerate(doc.directory_sources):
        if spec.name not in first:
            first[spec.name] = index
            continue
        line = doc.source.line_of(("directory_sources", first[spec.name], "name"))
        at = f" (first at line {line})" if line else ""
        path: ConfigPath = ("directory_sources", index, "name")
        checker.add(path, f"directory source {spec.name!r} is declared twice{at}; declare it once")


def directory_attributes(doc: ConfigDocument, session: Session | None) -> set[str]:
    """The identity attributes directory sources map, so a flow may test them before the first sync."""
    found = {key for spec in doc.directory_sources for key in spec.ldap.attributes}
    if session is not None:
        for spec in session.scalars(select(DirectorySource.spec)):
            found |= set(LdapSourceConfig.model_validate(spec).attributes)
    return found


def reconcile_directory_sources(reconciler: Any) -> None:
    """Make the store's directory sources match the document (`reconciler` is apply_config's walker).
    A changed source is synced again at the worker's next pass."""
    session: Session = reconciler.session
    doc: ConfigDocument = reconciler.doc
    names = [spec.name for spec in doc.directory_sources]
    rows = session.scalars(
        select(DirectorySource).where(
            or_(DirectorySource.source == CONFIG_SOURCE, DirectorySource.name.in_(names))
        )
    )
    existing = {row.name: row for row in rows}
    for spec in doc.directory_sources:
        _warn_unreadable_password(reconciler, spec.name, spec.ldap.bind_password)
        wanted = {
            "kind": LDAP_KIND,
            "spec": spec.ldap.model_dump(mode="json"),
            "sync_interval_seconds": spec.sync_interval_seconds,
        }
        row = existing.get(spec.name)
        if row is None:
            if reconciler.write:
                now = reconciler.now
                session.add(
                    DirectorySource(
                        id=new_id("dsrc"),
                        name=spec.name,
                        source=CONFIG_SOURCE,
                        created_at=now,
                        updated_at=now,
                        next_sync_at=None,
                        **wanted,
                    )
                )
            reconciler.created("directory_source", spec.name)
            continue
        changed = [key for key, value in wanted.items() if getattr(row, key) != value]
        if changed:
            if reconciler.write:
                for key in changed:
                    setattr(row, key, wanted[key])
                row.updated_at, row.next_sync_at = reconciler.now, None
            reconciler.changed("directory_source", spec.name, [c.removesuffix("_seconds") for c in changed])
    for name, row in existing.items():
        if name not in names:
            if reconciler.write:
                apply_snapshot(
                    session,
                    source=LDAP_PREFIX + name,
                    snapshot=DirectorySnapshot(),
                    now=reconciler.now,
                    known_conflicts=frozenset(),
                )
                session.delete(row)
            reconciler.removed("directory_source", name, "its people are deactivated")


def _warn_unreadable_password(reconciler: Any, name: str, password: SecretRef) -> None:
    """The worker and server read the password when they sync; applying only warns when it cannot be
    read here (the process that applies may not be one of them)."""
    try:
        password.resolve(f"directory source {name} bind_password")
    except InvalidInput as exc:
        reconciler.plan.warnings.append(f"{exc.detail} here; the worker and server need it to sync")


def exported_directory_sources(session: Session) -> list[dict[str, Any]]:
    """The stored sources as `directory_sources:` items (`sluice config export`), defaults left out."""
    return [
        {
            "name": row.name,
            "sync_interval": format_duration(timedelta(seconds=row.sync_interval_seconds)),
            LDAP_KIND: LdapSourceConfig.model_validate(row.spec).model_dump(
                mode="json", exclude_defaults=True
            ),
        }
        for row in session.scalars(select(DirectorySource).order_by(DirectorySource.name))
    ]
