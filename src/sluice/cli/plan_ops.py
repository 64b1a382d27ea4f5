"""The work behind `sluice plan --against`, `--by group` and `--drift`. Imported when such a plan
runs, like `store_ops`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from rich.markup import escape

from sluice.cli.output import console
from sluice.cli.scratch_store import scratch_store
from sluice.cli.store_ops import CHANGE_MARKS, bad_file, load_document
from sluice.runtime.wiring import Runtime
from sluice.services.config.access_diff import AccessDiff, access_diff
from sluice.services.config.apply import Plan, plan_config
from sluice.services.config.drift import Drift, drift
from sluice.services.config.export import export_config
from sluice.services.config.file import parse_config
from sluice.services.config.group_diff import by_group
from sluice.services.config.source import ConfigError
from sluice.store.db import transaction


def plan_against(
    against: Path, path: Path, *, inventory: Path | None, access: bool
) -> tuple[Plan, AccessDiff | None]:
    """The plan and access diff of `path` against the config `against` (with the resources of an
    inventory snapshot), in a throwaway store: no store or target needed, as in a pull request."""
    now = datetime.now(UTC)
    with (
        scratch_store(against, inventory, now=now, actor="sluice plan") as factory,
        transaction(factory) as session,
    ):
        document = load_document(path, session)
        try:
            plan = plan_config(session, document)
            diff = access_diff(session, document, now=now) if access and not plan.is_empty else None
        except ConfigError as exc:
            raise bad_file(path, exc) from exc
    return plan, diff


def drift_of_file(runtime: Runtime, path: Path) -> list[Drift]:
    """What the store holds that the file at `path` does not (see `services.config.drift`)."""
    with transaction(runtime.factory) as session:
        written = load_document(path, session)
        text = yaml.safe_dump(export_config(session), sort_keys=False, allow_unicode=True)
        try:
            held = parse_config(text, "the store (config export)", session=session)
        except ConfigError as exc:
            raise bad_file(Path("the store's config export"), exc) from exc
    return drift(held, written)


def print_drift(found: list[Drift]) -> None:
    if not found:
        console.print("no drift: the store holds nothing the file does not")
        return
    for item in found:
        style = "red" if item.only_in_store else "yellow"
        console.print(f"[{style}]! {escape(item.describe())}[/{style}]")
    console.print(f"drift: {len(found)} objects differ from the file")


def print_diff_by_group(diff: AccessDiff) -> None:
    for group in by_group(diff.people):
        members = f"{group.people} member{'s' if group.people != 1 else ''}"
        console.print(f"[bold]group {escape(group.name)}[/bold] ({members} reached)")
        for kind, style, words in CHANGE_MARKS:
            for line in group.lines(kind):
                console.print(f"  [{style}]{words} {escape(line)}[/{style}]")
