"""A throwaway SQLite store built from a config file and, optionally, an inventory snapshot (what
`sluice inventory export` writes): what `sluice test` checks policy in, and what `sluice plan
--against` diffs in, so neither needs a store or a target."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from sluice.cli.errors import EXIT_BAD_INPUT, CliError
from sluice.domain.errors import InvalidInput
from sluice.services.config.apply import apply_config
from sluice.services.config.file import load_config
from sluice.services.config.source import ConfigError
from sluice.services.targeting.snapshots import load_snapshot, read_snapshot
from sluice.store.db import make_engine, make_session_factory, transaction
from sluice.store.tables import Base


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}", exit_code=EXIT_BAD_INPUT) from exc


@contextmanager
def scratch_store(
    config: Path, inventory: Path | None, *, now: datetime, actor: str
) -> Iterator[sessionmaker[Session]]:
    """Sessions on a new store holding `config` applied and the resources of `inventory`; removed
    on exit. A bad file is a `CliError` naming it."""
    from sluice.cli.store_ops import bad_file

    with tempfile.TemporaryDirectory(prefix="sluice-scratch-") as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            Base.metadata.create_all(engine)
            factory = make_session_factory(engine)
            try:
                document = load_config(config)
            except ConfigError as exc:
                raise bad_file(config, exc) from exc
            with transaction(factory) as session:
                apply_config(session, document, actor=actor, now=now)
                if inventory is not None:
                    load_snapshot(session, read_snapshot(read_text(inventory), str(inventory)), now=now)
            yield factory
        except InvalidInput as exc:
            raise CliError(exc.detail, exit_code=EXIT_BAD_INPUT) from exc
        finally:
            engine.dispose()
