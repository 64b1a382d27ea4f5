"""The work behind the store-direct commands: opening the store, migrating, reading config files,
applying them, creating tokens. Imported only when such a command runs, so that client commands do
not pay for SQLAlchemy at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from sluice.cli.errors import EXIT_BAD_INPUT, CliError
from sluice.cli.output import console
from sluice.domain.durations import parse_duration
from sluice.domain.errors import InvalidInput
from sluice.domain.roles import Role
from sluice.domain.tokens import NEVER
from sluice.events.chain import ChainReport, Head, verify_chain
from sluice.runtime.settings import Settings
from sluice.runtime.wiring import Runtime
from sluice.services.config.source import ConfigError
from sluice.services.directory.tokens import create_token
from sluice.services.grants.secret_keys import check_and_record_key
from sluice.store.db import normalise_url, transaction
from sluice.store.migrate import current_revision, upgrade

if TYPE_CHECKING:
    from sluice.services.config.access_diff import AccessDiff
    from sluice.services.config.apply import Plan, PlanEntry
    from sluice.services.config.document import ConfigDocument

# The config modules are imported by the functions that use them: they bring the directory sources'
# SCIM and LDAP models, about a second of start-up that `sluice token create` and the like need not pay.

CLI_ACTOR = "sluice-cli"
# how each kind of access change is shown: (kind, colour, words)
CHANGE_MARKS = (
    ("may_newly", "green", "+ may request"),
    ("no_longer", "red", "- may no longer request"),
    ("now_automatic", "yellow", "~ now automatic"),
    ("no_longer_automatic", "yellow", "~ now needs approval"),
)


def store_label(settings: Settings) -> str:
    """Where the store is, fit to print: a file path, or a URL with its password hidden."""
    if settings.is_sqlite:
        return settings.database_url.removeprefix("sqlite:///")
    return make_url(normalise_url(settings.database_url)).render_as_string(hide_password=True)


def open_runtime() -> Runtime:
    return Runtime.from_settings(Settings.from_env())


def check_secret_key(runtime: Runtime) -> None:
    """Refuse to serve with a key that cannot open what the store holds; record a new store's key."""
    with transaction(runtime.factory) as session:
        check_and_record_key(session, runtime.box, now=runtime.clock())


def migrate_store(runtime: Runtime) -> tuple[str | None, str | None]:
    """Migrate the store to the newest revision; returns the revisions before and after."""
    if runtime.settings.is_sqlite:
        runtime.settings.home.mkdir(parents=True, exist_ok=True)
    before = current_revision(runtime.engine)
    upgrade(runtime.engine)
    return before, current_revision(runtime.engine)


def config_problems(exc: ConfigError) -> list[str]:
    """Every problem of a bad config file, one `FILE:LINE:COL: path: message` line each."""
    if exc.problems:
        return [str(p) for p in exc.problems]
    return [line for line in str(exc).splitlines() if line.strip()] or ["the file is not valid"]


def load_document(path: Path, session: Session | None = None) -> ConfigDocument:
    """Read and check a config file; with a session, references may name objects already stored."""
    from sluice.services.config.file import load_config

    try:
        return load_config(path, session=session)
    except ConfigError as exc:
        raise bad_file(path, exc) from exc


def bad_file(path: Path, exc: ConfigError) -> CliError:
    problems = config_problems(exc)
    count = len(problems)
    return CliError(
        f"{path} has {count} problem{'s' if count != 1 else ''}; nothing was applied",
        exit_code=EXIT_BAD_INPUT,
        notes=problems,
    )


def plan_as_dict(plan: Plan, *, applied: bool) -> dict[str, Any]:
    def entries(items: list[PlanEntry]) -> list[dict[str, str]]:
        out = []
        for entry in items:
            row = {"kind": entry.kind, "name": entry.name}
            if plan.notes.get(entry):
                row["note"] = plan.notes[entry]
            out.append(row)
        return out

    return {
        "applied": applied and not plan.is_empty,
        "created": entries(plan.created),
        "changed": entries(plan.changed),
        "removed": entries(plan.removed),
        "warnings": list(plan.warnings),
    }


def print_plan(plan: Plan, *, applied: bool) -> None:
    for sign, style, items in (
        ("+", "green", plan.created),
        ("~", "yellow", plan.changed),
        ("-", "red", plan.removed),
    ):
        for entry in items:
            note_text = plan.notes.get(entry)
            suffix = f" [dim]({escape(note_text)})[/dim]" if note_text else ""
            console.print(f"[{style}]{sign} {entry.kind} {escape(entry.name)}[/{style}]{suffix}")
    for warning in plan.warnings:
        console.print(f"[yellow]! {escape(warning)}[/yellow]")
    if plan.is_empty:
        console.print("no changes: the store already matches the file")
        return
    counts = f"{len(plan.created)} created, {len(plan.changed)} changed, {len(plan.removed)} removed"
    console.print(f"applied: {counts}" if applied else f"plan: {counts} (nothing applied yet)")


def access_diff_of_file(runtime: Runtime, path: Path) -> AccessDiff:
    """Who would gain and lose what if the file at `path` were applied; the store is not changed."""
    from sluice.services.config.access_diff import access_diff

    with transaction(runtime.factory) as session:
        document = load_document(path, session)
        try:
            return access_diff(session, document, now=runtime.clock())
        except ConfigError as exc:
            raise bad_file(path, exc) from exc


def print_access_diff(diff: AccessDiff, *, by_group: bool = False) -> None:
    from sluice.services.config.access_diff import summarised

    counts = diff.counts()
    if diff.is_empty:
        console.print("access: nobody gains or loses anything")
        return
    console.print(
        f"access: {counts['people']} people; {counts['may_newly']} newly requestable, "
        f"{counts['no_longer']} no longer, {counts['now_automatic']} now automatic, "
        f"{counts['no_longer_automatic']} no longer automatic; {counts['grants_ended']} live grants end, "
        f"{counts['requests_closed']} pending requests close; "
        f"approvers change on {counts['approver_changes']} pending or live grants"
    )
    if by_group:
        from sluice.cli.plan_ops import print_diff_by_group

        print_diff_by_group(diff)
    for person in [] if by_group else diff.people:
        console.print(f"[bold]{escape(person.email)}[/bold]")
        for key, style, words in CHANGE_MARKS:
            for line in summarised(getattr(person, key)):
                console.print(f"  [{style}]{words} {escape(line)}[/{style}]")
    for grant in diff.grants_ended:
        console.print(
            f"[red]- ends grant {grant['id']}: {escape(grant['grantee'])} {grant['permission']} on "
            f"{escape(grant['resource'])}[/red]"
        )
    for request in diff.requests_closed:
        console.print(
            f"[red]- closes pending request {request['id']} of {escape(request['requester'])}[/red]"
        )
    for change in diff.approvers:
        where = f"flow {escape(change.flow)}, {escape(change.resource)} (for {escape(change.requester)})"
        for email in change.newly:
            console.print(f"[green]+ {escape(email)} may approve on {where}[/green]")
        for email in change.no_longer:
            console.print(f"[red]- {escape(email)} may no longer approve on {where}[/red]")


def plan_file(runtime: Runtime, path: Path, *, apply: bool) -> Plan:
    """Plan, or apply in one transaction, the config file at `path`. A bad file applies nothing."""
    from sluice.services.config.apply import apply_config, plan_config

    with transaction(runtime.factory) as session:
        document = load_document(path, session)
        try:
            if not apply:
                return plan_config(session, document)
            plan = apply_config(session, document, actor=CLI_ACTOR, now=runtime.clock())
        except ConfigError as exc:  # references checked against the store
            raise bad_file(path, exc) from exc
        runtime.notify_work(session)
        return plan


def export_text(runtime: Runtime) -> str:
    """The store's config as YAML text."""
    from sluice.services.config.export import export_config

    with transaction(runtime.factory) as session:
        document = export_config(session)
    header = "# sluice config export: the store's config; `sluice plan -f` this file shows no change\n"
    return header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)


def new_token(runtime: Runtime, *, email: str, role: Role, expires: str | None = None) -> str:
    """The store-side bootstrap token; it lives `expires` (`30d`…) or, when None or `never`, until
    revoked."""
    now = runtime.clock()
    try:
        ends = None if expires is None or expires.strip().lower() == NEVER else now + parse_duration(expires)
    except InvalidInput as exc:
        raise CliError(f"--expires: {exc.detail}", exit_code=EXIT_BAD_INPUT) from exc
    with transaction(runtime.factory) as session:
        return create_token(session, email=email, role=role, actor=CLI_ACTOR, now=now, expires_at=ends)


def verify_audit(runtime: Runtime, *, expect: str | None) -> ChainReport:
    try:
        head = Head.parse(expect) if expect else None
    except ValueError as exc:
        raise CliError(f"--expect: {exc}", exit_code=EXIT_BAD_INPUT) from exc
    with transaction(runtime.factory) as session:
        return verify_chain(session, expect=head)
