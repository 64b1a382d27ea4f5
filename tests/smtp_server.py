"""A real SMTP server in this process (aiosmtpd) on a free loopback port, for the email channel's
tests: plain, STARTTLS (required, so a client that skips it is refused) or implicit TLS, with
optional AUTH, recording every message it accepts and able to refuse recipients or fail on cue."""

from __future__ import annotations

import email
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.tls_files import self_signed


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    authenticated_as: str | None

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


@dataclass
class MailHandler:
    received: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP answer
    fail_data: list[str] = field(default_factory=list)  # answers to DATA, one per message, then "250"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        if self.fail_data:
            return self.fail_data.pop(0)
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.received.append(
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                parsed,
                session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
                login,
            )
        )
        return "250 Message accepted"


def _authenticator(users: dict[str, str]) -> Any:
    def check(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and users.get(data.login.decode()) == data.password.decode():
            return AuthResult(success=True, auth_data=data)
        return AuthResult(success=False, handled=False)

    return check


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MailServer:
    port: int
    handler: MailHandler
    ca_file: Path

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@contextmanager
def running_mail_server(
    folder: Path, *, security: str = "starttls", users: dict[str, str] | None = None
) -> Iterator[MailServer]:
    """`security`: starttls (required before MAIL), tls (implicit) or none."""
    cert, key = self_signed(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = MailHandler()
    port = _free_port()
    options: dict[str, Any] = {"auth_require_tls": security != "none"}
    if users is not None:
        options["authenticator"] = _authenticator(users)
        options["auth_required"] = True
    if security == "starttls":
        options |= {"tls_context": context, "require_starttls": True}
    elif security == "tls":
        options["ssl_context"] = context
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield MailServer(port, handler, cert)
    finally:
        controller.stop()
