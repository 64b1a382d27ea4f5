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
