"""The email channel: one message per notice, sent over SMTP with STARTTLS (or implicit TLS, or plain
for a relay on the same host), as text and HTML (Jinja2, autoescaped) with a link into the portal.
A later message about the same request is threaded under the first (In-Reply-To, References)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from sluice.services.notify.channels import ChannelError, Notice
from sluice.services.notify.wording import short, wording

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
BECAUSE = {
    "approver": "an approver of this request",
    "requester": "the person this access is for",
    "owner": "an owner of this resource",
    "channel": "subscribed to these messages",
}
SECURITY = ("starttls", "tls", "none")
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    security: str = "starttls"  # starttls | tls (implicit, port 465) | none (a relay on this host)
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 10.0
    ca_file: str | None = None  # trust this CA (PEM) instead of the system's

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmtpSettings | None:
        """From `SLUICE_SMTP_*`; None when `SLUICE_SMTP_HOST` is not set. Raises ValueError, naming
        the setting, for a value that cannot work."""
        host = env.get("SLUICE_SMTP_HOST", "").strip()
        if not host:
            return None
        security = _security(env)
        port = _int(env, "SLUICE_SMTP_PORT", 465 if security == "tls" else 587)
        sender = env.get("SLUICE_SMTP_FROM", "").strip()
        if "@" not in parseaddr(sender)[1]:
            raise ValueError(f"SLUICE_SMTP_FROM must be an email address, not {sender!r}")
        username = env.get("SLUICE_SMTP_USERNAME", "").strip() or None
        password_env = env.get("SLUICE_SMTP_PASSWORD_ENV", "").strip()
        password = env.get(password_env) if password_env else env.get("SLUICE_SMTP_PASSWORD")
        if password_env and not password:
            raise ValueError(f"SLUICE_SMTP_PASSWORD_ENV names {password_env}, which is not set")
        if username and security == "none" and host not in LOOPBACK:
            raise ValueError(
                "SLUICE_SMTP_STARTTLS=false with SLUICE_SMTP_USERNAME would send the password in the clear; "
                "use STARTTLS or implicit TLS (SLUICE_SMTP_TLS=true) for a remote server"
            )
        timeout = float(_int(env, "SLUICE_SMTP_TIMEOUT_SECONDS", 10))
        ca_file = env.get("SLUICE_SMTP_CA_FILE", "").strip() or None
        return cls(host, port, sender, security, username, password or None, timeout, ca_file)


def _security(env: Mapping[str, str]) -> str:
    implicit = env.get("SLUICE_SMTP_TLS", "").strip().lower()
    starttls = env.get("SLUICE_SMTP_STARTTLS", "true").strip().lower()
    if implicit in ("1", "true", "yes"):
        return "tls"
    if implicit not in ("", "0", "false", "no"):
        raise ValueError(f"SLUICE_SMTP_TLS must be true or false, not {implicit!r}")
    if starttls in ("1", "true", "yes"):
        return "starttls"
    if starttls in ("0", "false", "no"):
        return "none"
    raise ValueError(f"SLUICE_SMTP_STARTTLS must be true or false, not {starttls!r}")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{name} must be a whole number between 1 and 65535, not {raw!r}")
    return int(raw)


def compose(notice: Notice, sender: str) -> EmailMessage:
    """The message for one notice: text and HTML alternatives of the same wording."""
    if not notice.recipient_email:
        raise ChannelError("email reaches people: this notice has no address", retryable=False)
    words = wording(notice)
    values = {
        "headline": words.headline,
        "facts": words.facts,
        "link": words.link,
        "action": words.action,
        "because": BECAUSE.get(notice.role, "named in the configuration"),
    }
    message = EmailMessage()
    message["Subject"] = short(f"[Sluice] {words.headline}", 250)
    message["From"] = sender
    message["To"] = notice.recipient_email
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "sluice.invalid"
    message["Message-ID"] = make_msgid(idstring=notice.notification_id, domain=domain)
    message["X-Sluice-Notification"] = notice.notification_id
    if notice.earlier:  # the same conversation as what this person got about the request before
        message["In-Reply-To"] = notice.earlier[0]
        message["References"] = " ".join(notice.earlier[-10:])
    message.set_content(_TEMPLATES.get_template("email.txt").render(values))
    message.add_alternative(_TEMPLATES.get_template("email.html").render(values), subtype="html")
    return message


class EmailChannel:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=self._tls())
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
        if s.security == "starttls":
            client.ehlo()
            if not client.has_extn("starttls"):
                client.close()
                raise ChannelError(
                    f"{s.host}:{s.port} does not offer STARTTLS; refusing to send in the clear"
                )
            client.starttls(context=self._tls())
            client.ehlo()
        return client

    def send(self, notice: Notice) -> str | None:
        message = compose(notice, self.settings.sender)
        try:
            with self._connect() as client:
                if self.settings.username:
                    client.login(self.settings.username, self.settings.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            permanent = all(500 <= code < 600 for code in codes)
            raise ChannelError(
                f"the server refused {notice.recipient_email}: {codes}", retryable=not permanent
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(
                f"SMTP {self.settings.host}:{self.settings.port}: {type(exc).__name__}: {exc}"
            ) from exc
        return str(message["Message-ID"])


def _text(raw: bytes | str) -> str:
    return short(raw.decode(errors="replace") if isinstance(raw, bytes) else raw, 200)
