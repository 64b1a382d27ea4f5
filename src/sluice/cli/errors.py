"""How the CLI fails: one clear `error: ...` line on stderr and a non-zero exit, never a traceback.

Every command runs inside `ErrorHandlingGroup.invoke`, which turns the errors a person can act on
(domain errors, API problems, unreachable servers, bad files) into that one line."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import httpx
import typer
from typer.core import TyperGroup

from sluice.domain.errors import SluiceError

log = logging.getLogger("sluice.cli")

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A failure with a message meant for the person at the terminal."""

    def __init__(
        self,
        detail: str,
        *,
        exit_code: int = EXIT_FAILURE,
        notes: list[str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.exit_code = exit_code
        self.notes = notes or []
        self.status = status  # the HTTP status, when the error is a server's answer


def _err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _store_hint(exc: Exception) -> str | None:
    """A missing table means the store was never migrated; say how to fix that."""
    text = str(exc).lower()
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return "the store has no tables yet; run `sluice db upgrade` (or start `sluice up`) first"
    return None


def report(exc: BaseException) -> int:
    """Print `exc` as an `error:` line (plus indented notes) and return the exit code to use."""
    if isinstance(exc, CliError):
        _err(f"error: {exc.detail}")
        for note in exc.notes:
            _err(f"  {note}")
        return exc.exit_code
    if isinstance(exc, SluiceError):
        _err(f"error: {exc.detail}")
        reasons = exc.extra.get("reasons")
        if reasons:
            _err(f"  reasons: {reasons}")
        return EXIT_FAILURE
    if isinstance(exc, httpx.TimeoutException):
        _err(f"error: the Sluice server did not answer in time ({type(exc).__name__})")
        return EXIT_FAILURE
    if isinstance(exc, httpx.HTTPError):
        _err(f"error: HTTP request failed: {exc}")
        return EXIT_FAILURE
    hint = _store_hint(exc) if isinstance(exc, Exception) else None
    if hint:
        _err(f"error: {hint}")
        return EXIT_FAILURE
    if isinstance(exc, OSError):
        _err(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_FAILURE
    first_line = (str(exc).strip().splitlines() or [""])[0]
    if type(exc).__module__.startswith("sqlalchemy") and type(exc).__name__ == "OperationalError":
        _err(f"error: the store cannot be used: {first_line}")
        return EXIT_FAILURE
    log.debug("unexpected error", exc_info=exc)
    _err(f"error: unexpected {type(exc).__name__}: {first_line}".rstrip(": "))
    return EXIT_FAILURE


class ErrorHandlingGroup(TyperGroup):
    """The root command group. Catches what the subcommands raise and reports it in one line."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Typer's own exits, usage errors and help
        except KeyboardInterrupt:
            _err("error: interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("SLUICE_DEBUG"):
                raise
            raise typer.Exit(report(exc)) from None
