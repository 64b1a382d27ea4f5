"""Options shared by many commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]
UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="Sluice server URL \\[default: $SLUICE_URL or http://127.0.0.1:8080]."),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="API token \\[default: $SLUICE_TOKEN].", show_default=False)
]
