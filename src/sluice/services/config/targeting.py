"""Config-file checks and apply steps for saved scopes and bundles (`scopes:` and `bundles:`).

Checks: every `{bundle: NAME}` and every scope a target or selector names is declared in the file or
already in Sluice (and not managed by the config); bundle members name declared integrations, types
and permissions like flow targets do. Apply: scopes and bundles are created, changed and removed by
name like flows, before the flows that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from sluice.domain.flows import Target
from sluice.store.targeting_tables import Bundle, Scope
from sluice.store.types import new_id

if TYPE_CHECKING:
    from sluice.services.config.document import ConfigDocument
    from sluice.services.config.source import ConfigPath

CONFIG_SOURCE = "config"


def _store_names(session: Session | None, table: type[Bundle] | type[Scope]) -> set[str]:
    if session is None:
        return set()
    return set(session.scalars(select(table.name).where(table.source != CONFIG_SOURCE)))


def targeting_problems(checker: Any, doc: ConfigDocument, session: Session | None) -> None:
    """Adds a problem to `checker` (the config checker) for each reference that leads nowhere."""
    scopes = {s.name for s in doc.scopes} | doc.unchecked("scopes") | _store_names(session, Scope)
    bundles = {b.name for b in doc.bundles} | doc.unchecked("bundles") | _store_names(session, Bundle)
    where = "in this file or in Sluice" if session is not None else "in this file"

    def check(target: Target, path: ConfigPath) -> None:
        if target.bundle is not None and target.bundle not in bundles:
            checker.add(
                (*path, "bundle"), f"bundle {target.bundle!r} is not declared {where} (under bundles:)"
            )
        if target.scope is not None and target.scope not in scopes:
            checker.add((*path, "scope"), f"scope {target.scope!r} is not declared {where} (under scopes:)")
        for part, selector in (("select", target.select), ("exclude", target.select.exclude)):
            if selector is not None and selector.scope and selector.scope not in scopes:
                at = (*path, "select", "scope") if part == "select" else (*path, "select", "exclude", "scope")
                checker.add(at, f"scope {selector.scope!r} is not declared {where} (under scopes:)")

    for index, bundle in enumerate(doc.bundles):
        for number, target in enumerate(bundle.targets):
            path: ConfigPath = ("bundles", index, "targets", number)
            check(target, path)
            checker._target(target, path)
    for index, flow in enumerate(doc.flows):
        for number, target in enumerate(flow.targets):
            check(target, ("flows", index, "targets", number))


def reconcile_targeting(reconciler: Any) -> None:
    """Make scopes and bundles match the document (`reconciler` is apply_config's walker)."""
    session: Session = reconciler.session
    doc: ConfigDocument = reconciler.doc
    sections: list[tuple[Any, str, list[Any]]] = [
        (Scope, "scope", doc.scopes),
        (Bundle, "bundle", doc.bundles),
    ]
    for table, kind, specs in sections:
        names = [s.name for s in specs]
        rows = session.scalars(select(table).where(or_(table.source == CONFIG_SOURCE, table.name.in_(names))))
        existing = {row.name: row for row in rows}
        for spec in specs:
            wanted: dict[str, Any] = (
                {"query": spec.query, "description": spec.description}
                if kind == "scope"
                else {"spec": spec.model_dump(mode="json", exclude_none=True)}
            )
            wanted["source"] = CONFIG_SOURCE
            row = existing.get(spec.name)
            if row is None:
                if reconciler.write:
                    now = reconciler.now
                    row = table(id=new_id(kind[:3]), name=spec.name, created_at=now, updated_at=now, **wanted)
                    session.add(row)
                reconciler.created(kind, spec.name)
                continue
            changed = [key for key, value in wanted.items() if getattr(row, key) != value]
            if changed:
                if reconciler.write:
                    for key, value in wanted.items():
                        setattr(row, key, value)
                    row.updated_at = reconciler.now
                reconciler.changed(kind, spec.name, changed)
        for name, row in existing.items():
            if name not in names and row.source == CONFIG_SOURCE:
                if reconciler.write:
                    session.delete(row)
                reconciler.removed(kind, name)
