"""The store's files are its owner's alone. SLUICE_HOME is created 0700 and the files Sluice keeps
(the SQLite database with its WAL and shared-memory files, the secret key) 0600; ones left readable
by others from before are tightened at start, with a log line saying what changed."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

from sluice.runtime.settings import Settings
from sluice.services.grants.secrets import KEY_FILE_NAME

log = logging.getLogger("sluice.store")

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, or None for another store (or an in-memory one)."""
    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    return Path(database) if database and database != ":memory:" else None


def secure_store_files(settings: Settings) -> None:
    """Make the folders and files the store lives in private to their owner. The SQLite database is
    created empty here, 0600, before SQLite opens it: SQLite gives its WAL and shared-memory files
    the mode of the database file."""
    database = sqlite_path(settings)
    home = settings.home.resolve()
    if settings.secret_key is None or (database is not None and database.resolve().parent == home):
        home.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        _tighten(home, FOLDER_MODE)
    if database is not None:
        # A database outside SLUICE_HOME: its folder is made private if Sluice makes it, but a folder
        # that exists (the working directory, say) is the operator's and stays as it is.
        database.parent.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
        for suffix in _SQLITE_COMPANIONS:
            _tighten(database.with_name(database.name + suffix), FILE_MODE)
    _tighten(settings.home / KEY_FILE_NAME, FILE_MODE)


def _tighten(path: Path, wanted: int) -> None:
    """Take away what group and others may do with `path`, if anything (a missing path is left)."""
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    if path.is_symlink() or current & ~wanted == 0:
        return
    tightened = current & wanted
    os.chmod(path, tightened)
    log.warning(
        "%s was open to other users (mode %04o); it is now %04o, readable by its owner only",
        path,
        current,
        tightened,
    )
