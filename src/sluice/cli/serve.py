"""Running Sluice: `up` (API + worker in one process), `server` (API only), `worker` (worker only).
The machinery is in `serving`, imported when one of these starts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.errors import CliError

if TYPE_CHECKING:
    from sluice.cli.serving import Listen

HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on.")]
PortOpt = Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")]
CertOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert", envvar="SLUICE_TLS_CERT", dir_okay=False, help="Serve HTTPS with this certificate."
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--tls-key", envvar="SLUICE_TLS_KEY", dir_okay=False, help="The key of --tls-cert (PEM)."),
]
ProxiesOpt = Annotated[
    str | None,
    typer.Option(
        "--trusted-proxies",
        envvar="SLUICE_TRUSTED_PROXIES",
        help="Addresses or networks (comma-separated) of reverse proxies whose X-Forwarded-* to trust.",
    ),
]


def _listen(host: str, port: int, cert: Path | None, key: Path | None, proxies: str | None) -> Listen:
    from sluice.cli.serving import Listen

    if (cert is None) != (key is None):
        raise CliError("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
    for path in (cert, key):
        if path is not None and not path.is_file():
            raise CliError(f"cannot read {path}: no such file")
    return Listen(host=host, port=port, tls_cert=cert, tls_key=key, trusted_proxies=proxies or None)


def up(
    demo: Annotated[bool, typer.Option("--demo", help="Seed demo people, integrations and flows.")] = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Apply this config file at start.", dir_okay=False)
    ] = None,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    trusted_proxies: ProxiesOpt = None,
) -> None:
    """Run the API and the worker in one process (embedded SQLite by default); Ctrl-C stops both."""
    if demo and config is not None:
        raise CliError(
            "--demo and --config each declare the whole configuration, so they cannot be combined; "
            "use one of them"
        )
    from sluice.cli import serving

    listen = _listen(host, port, tls_cert, tls_key, trusted_proxies)
    serving.run_up(demo=demo, listen=listen, config=config)


def server(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8080,
    tls_cert: CertOpt = None,
    tls_key: KeyOpt = None,
    trusted_proxies: ProxiesOpt = None,
) -> None:
    """Run the API only, for PostgreSQL deployments (`SLUICE_DATABASE_URL`); workers run apart."""
    from sluice.cli import serving

    serving.run_server(listen=_listen(host, port, tls_cert, tls_key, trusted_proxies))


def worker(
    health_host: Annotated[
        str,
        typer.Option("--health-host", envvar="SLUICE_WORKER_HEALTH_HOST", help="Address of --health-port."),
    ] = "127.0.0.1",
    health_port: Annotated[
        int | None,
        typer.Option(
            "--health-port",
            envvar="SLUICE_WORKER_HEALTH_PORT",
            min=0,
            max=65535,
            help="Serve /healthz, /readyz and /metrics on this port (0: any free port, logged).",
        ),
    ] = None,
) -> None:
    """Run the worker only: grant, expire, revoke, sync. Run as many as load needs on PostgreSQL."""
    from sluice.cli import serving

    serving.run_worker(health_host=health_host, health_port=health_port)
