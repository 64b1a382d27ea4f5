"""Running Sluice: `up` (API + worker in one process), `server` (API only), `worker` (worker only).
The machinery is in `serving`, imported when one of these starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sluice.cli.errors import CliError

HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]


def up(
    demo: Annotated[bool, typer.Option("--demo", help="Seed demo people, integrations and flows.")] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Apply this config file at start.", dir_okay=False)
    ] = None,
) -> None:
    """Run the API and the worker in one process (embedded SQLite by default); Ctrl-C stops both."""
    if demo and config is not None:
        raise CliError(
            "--demo and --config each declare the whole configuration, so they cannot be combined; "
            "use one of them"
        )
    from sluice.cli import serving

    serving.run_up(demo=demo, host=host, port=port, config=config)


def server(host: HostOpt = "127.0.0.1", port: PortOpt = 8080) -> None:
    """Run the API only, for PostgreSQL deployments (`SLUICE_DATABASE_URL`); workers run apart."""
    from sluice.cli import serving

    serving.run_server(host=host, port=port)


def worker() -> None:
    """Run the worker only: grant, expire, revoke, sync. Run as many as load needs on PostgreSQL."""
    from sluice.cli import serving

    serving.run_worker()
