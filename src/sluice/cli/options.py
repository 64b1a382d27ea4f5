"""Options shared by many commands."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.errors import CliError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="Sluice server URL \\[default: $SLUICE_URL or http://127.0.0.1:8080]."),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="API token \\[default: $SLUICE_TOKEN].", show_default=False)
]


def key_values(pairs: list[str], what: str) -> dict[str, str]:
    """`key=value` arguments as a dict; a pair without `=` or with an empty key is a clear error."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{what} {pair!r} is not key=value")
        found[key.strip()] = value
    return found
