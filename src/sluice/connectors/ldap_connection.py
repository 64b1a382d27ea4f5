"""Opening a bound LDAP connection, shared by the LDAP groups connector and the LDAP directory source:
TLS (ldaps:// or StartTLS) checks the server's certificate, the bind password is read from where the
config names it, and the connection is closed whatever happens."""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

import ldap3

from sluice.connectors.base import SecretRef
from sluice.connectors.support import is_loopback


def ldap_host(url: str) -> str:
    """The host of an ldap:// or ldaps:// URL."""
    return url.split("://", 1)[1].rstrip("/").rsplit(":", 1)[0].strip("[]")


def wants_start_tls(url: str, start_tls: bool | None) -> bool:
    """StartTLS on an ldap:// URL: as configured, else on toward every host beyond this machine
    (ldaps:// is TLS from the start)."""
    if url.startswith("ldaps://"):
        return False
    if start_tls is not None:
        return start_tls
    return not is_loopback(ldap_host(url))


@contextmanager
def bound_connection(
    *,
    url: str,
    bind_dn: str,
    bind_password: SecretRef | None,
    start_tls: bool,
    ca_file: str | None,
    connect_timeout_seconds: float,
    timeout_seconds: float,
    what: str,
) -> Iterator[ldap3.Connection]:
    tls = None
    if ca_file or start_tls or url.startswith("ldaps"):
        tls = ldap3.Tls(ca_certs_file=ca_file, validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(url, get_info=ldap3.NONE, tls=tls, connect_timeout=connect_timeout_seconds)
    password = None if bind_password is None else bind_password.resolve(f"{what} bind_password")
    conn = ldap3.Connection(
        server,
        user=bind_dn,
        password=password,
        receive_timeout=max(1, math.ceil(timeout_seconds)),  # ldap3 takes whole seconds
        raise_exceptions=True,
    )
    try:
        conn.open()
        if start_tls:
            conn.start_tls()
        conn.bind()
        yield conn
    finally:
        conn.unbind()
