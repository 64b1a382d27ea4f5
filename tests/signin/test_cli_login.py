"""`sluice login` end to end: the CLI against a Sluice server on a real port, signing in through the
real provider in a stand-in browser, then asking for access as the person it signed in."""

from __future__ import annotations

import json
import re
import stat
import sys
import threading
import time
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from sluice.api.app import create_app
from sluice.cli import login_commands
from sluice.cli.main import app
from tests.oidc_provider import SLUICE_URL, Browser, RunningProvider, free_port
from tests.signin.conftest import sluice_signing_in


@contextmanager
def serving(application: FastAPI) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_sluice_login_then_ask_then_logout(
    tmp_path: Path, openid_provider: RunningProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    for name in ("SLUICE_TOKEN", "SLUICE_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    with (
        sluice_signing_in(tmp_path, openid_provider) as signin,
        serving(create_app(signin.runtime)) as base,
    ):
        opened: list[str] = []

        def browser_of_alice(url: str) -> bool:
            """What a person does in the browser the CLI opened: sign in at the provider, come
            back to Sluice (reached here at `base`), and be sent on to the CLI's listener."""
            opened.append(url)
            browser = Browser(openid_provider.issuer)
            try:
                back = browser.sign_in(url, "alice@example.com")
            finally:
                browser.close()
            handoff = httpx.get(back.replace(SLUICE_URL, base), follow_redirects=False)
            assert handoff.status_code == 303, handoff.text
            assert handoff.headers["location"].startswith("http://127.0.0.1:")
            assert httpx.get(handoff.headers["location"]).status_code == 200
            return True

        monkeypatch.setattr(webbrowser, "open", browser_of_alice)

        signed_in = runner.invoke(app, ["login", "--url", base], catch_exceptions=False)
        assert signed_in.exit_code == 0, signed_in.output
        assert "alice@example.com" in signed_in.stdout
        assert opened and opened[0] in signed_in.stderr  # the URL is shown too

        credentials = config_home / "sluice" / "credentials"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
        stored = json.loads(credentials.read_text())["servers"][base]
        assert stored["token"].startswith("sls_") and stored["email"] == "alice@example.com"

        whoami = runner.invoke(app, ["whoami", "--url", base, "--json"], catch_exceptions=False)
        assert whoami.exit_code == 0, whoami.output
        me = json.loads(whoami.stdout)
        assert me["email"] == "alice@example.com" and me["signed_in_with"] == "cli" and me["expires_at"]

        asked = runner.invoke(
            app,
            [
                "request",
                "create",
                "--url",
                base,
                "-r",
                "groups/oncall",
                "-p",
                "member",
                "-d",
                "1h",
                "--reason",
                "on call tonight",
                "--json",
            ],
            catch_exceptions=False,
        )
        assert asked.exit_code == 0, asked.output
        assert json.loads(asked.stdout)["requester"] == "alice@example.com"

        out = runner.invoke(app, ["logout", "--url", base], catch_exceptions=False)
        assert out.exit_code == 0 and "Signed out" in out.stdout
        assert base not in json.loads(credentials.read_text())["servers"]
        # The session ended on the server too, not only here.
        problem = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {stored['token']}"})
        assert problem.status_code == 401

        after = runner.invoke(app, ["whoami", "--url", base])
        assert after.exit_code == 1 and "sluice login" in after.stderr


def test_login_against_a_server_without_sign_in_says_so(
    tmp_path: Path, openid_provider: RunningProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with sluice_signing_in(tmp_path, openid_provider) as signin:
        signin.runtime.signin = None
        with serving(create_app(signin.runtime)) as base:
            result = CliRunner().invoke(app, ["login", "--url", base, "--no-browser"])
        assert result.exit_code == 1
        assert "not configured" in result.stderr


def test_sluice_login_device(
    tmp_path: Path, openid_provider: RunningProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--device`: the CLI prints a code and a URL; the person enters it in a browser elsewhere while
    the CLI polls."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    entered: list[str] = []

    def meanwhile_in_a_browser(_seconds: float) -> None:
        """The CLI waits between polls; the first wait is when the person acts on what it printed."""
        if entered:
            return
        printed = sys.stderr.buffer.getvalue().decode()  # type: ignore[attr-defined]
        url = re.search(r"Visit (\S+)", printed)
        code = re.search(r"enter the code: (\S+)", printed)
        assert url and code, printed
        browser = Browser(openid_provider.issuer)
        try:
            browser.enter_device_code(url.group(1), code.group(1), "dave@example.com")
        finally:
            browser.close()
        entered.append(code.group(1))

    monkeypatch.setattr(login_commands, "sleep", meanwhile_in_a_browser)
    with (
        sluice_signing_in(tmp_path, openid_provider) as signin,
        serving(create_app(signin.runtime)) as base,
    ):
        result = CliRunner().invoke(app, ["login", "--url", base, "--device"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert entered and "dave@example.com" in result.stdout
        whoami = CliRunner().invoke(app, ["whoami", "--url", base, "--json"], catch_exceptions=False)
        assert json.loads(whoami.stdout)["signed_in_with"] == "device"
