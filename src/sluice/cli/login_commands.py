"""`sluice login`, `sluice logout`: sign in through the server's identity provider and keep the
session in the user's config directory (see `credentials.py`).

The browser sign-in follows RFC 8252: a listener on a free loopback port receives the hand-off, and
a PKCE verifier that never leaves this process proves the hand-off is ours. The server holds the
provider's client secret; the CLI never sees it. `--device` uses the device authorization grant
(RFC 8628) for a terminal with no browser."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from time import monotonic, sleep
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer

from sluice.cli.client import ApiClient, server_url
from sluice.cli.credentials import forget_session, store_session, stored_session
from sluice.cli.errors import CliError
from sluice.cli.options import UrlOpt
from sluice.cli.output import err_console, print_line

WAIT_SECONDS = 300
CALLBACK_PATH = "/callback"

DeviceOpt = Annotated[
    bool, typer.Option("--device", help="Sign in on another device: print a code and a URL (RFC 8628).")
]
NoBrowserOpt = Annotated[
    bool, typer.Option("--no-browser", help="Print the sign-in URL instead of opening a browser.")
]
HintOpt = Annotated[
    str | None, typer.Option("--login-hint", help="Your email, passed to the identity provider.")
]


class _Listener(HTTPServer):
    code: str | None = None
    error: str | None = None
    done: threading.Event


class _Callback(BaseHTTPRequestHandler):
    server: _Listener

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self.send_error(404)
            return
        query = parse_qs(parts.query)
        self.server.code = next(iter(query.get("code", [])), None)
        self.server.error = next(iter(query.get("error", [])), None)
        message = "Signed in; you can close this window." if self.server.code else "Sign-in failed."
        body = f"<!doctype html><title>Sluice</title><p>{html.escape(message)}</p>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the terminal shows what matters."""


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _browser_sign_in(api: ApiClient, *, open_browser: bool, login_hint: str | None) -> dict[str, Any]:
    listener = _Listener(("127.0.0.1", 0), _Callback)
    listener.done = threading.Event()
    thread = threading.Thread(target=listener.serve_forever, name="sluice-login", daemon=True)
    thread.start()
    try:
        verifier, challenge = _pkce()
        redirect = f"http://127.0.0.1:{listener.server_port}{CALLBACK_PATH}"
        started = api.send(
            "POST",
            "/auth/cli/start",
            body={"redirect_uri": redirect, "code_challenge": challenge, "login_hint": login_hint},
        )
        url = started["authorization_url"]
        err_console.print("Sign in to Sluice in your browser:", soft_wrap=True)
        err_console.print(f"  {url}", soft_wrap=True, markup=False, highlight=False)
        if open_browser and not webbrowser.open(url):
            err_console.print("(no browser could be opened here: open the URL above yourself)")
        if not listener.done.wait(WAIT_SECONDS):
            raise CliError(
                f"no sign-in arrived within {WAIT_SECONDS // 60} minutes; run `sluice login` again"
            )
        if not listener.code:
            raise CliError(f"the sign-in did not complete ({listener.error or 'no code'})")
        session: dict[str, Any] = api.send(
            "POST", "/auth/cli/token", body={"code": listener.code, "code_verifier": verifier}
        )
        return session
    finally:
        listener.shutdown()
        listener.server_close()


def _device_sign_in(api: ApiClient) -> dict[str, Any]:
    started = api.send("POST", "/auth/device/start")
    target = started.get("verification_uri_complete") or started["verification_uri"]
    err_console.print(f"Visit {target}", soft_wrap=True, markup=False, highlight=False)
    err_console.print(f"and enter the code: {started['user_code']}", markup=False, highlight=False)
    deadline = monotonic() + int(started["expires_in"])
    interval = max(1, int(started["interval"]))
    while monotonic() < deadline:
        sleep(interval)
        answer: dict[str, Any] = api.send(
            "POST", "/auth/device/token", body={"poll_token": started["poll_token"]}
        )
        if "token" in answer:
            return answer
        if answer.get("status") == "slow_down":  # RFC 8628 3.5
            interval += 5
    raise CliError(
        "the device code expired before the sign-in was approved; run `sluice login --device` again"
    )


def login(
    url: UrlOpt = None,
    device: DeviceOpt = False,
    no_browser: NoBrowserOpt = False,
    login_hint: HintOpt = None,
) -> None:
    """Sign in through your identity provider; later commands use the session (no token needed)."""
    base = server_url(url)
    with ApiClient(base, None) as api:
        if device:
            session = _device_sign_in(api)
        else:
            session = _browser_sign_in(api, open_browser=not no_browser, login_hint=login_hint)
    path = store_session(base, session)
    print_line(f"Signed in to {base} as {session['email']} until {session['expires_at']} (kept in {path})")


def logout(url: UrlOpt = None) -> None:
    """Sign out: end the session on the server and forget it here."""
    base = server_url(url)
    entry = stored_session(base)
    if entry is not None:
        with ApiClient(base, str(entry["token"])) as api:
            try:
                api.send("POST", "/auth/logout")
            except CliError as exc:
                if exc.status != 401:  # an ended session is as good as signed out
                    raise
    if forget_session(base) or entry is not None:
        print_line(f"Signed out of {base}")
    else:
        print_line(f"Not signed in to {base}")
