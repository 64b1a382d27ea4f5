"""`sluice server --tls-cert/--tls-key` serves HTTPS that a verifying client accepts, with HSTS; a
lone --tls-cert or a missing file is refused before anything starts."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.cli.conftest import Invoke, assert_clean_failure
from tests.tls_files import self_signed

SLUICE = str(Path(sys.executable).with_name("sluice"))


def test_server_serves_https_with_hsts(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["SLUICE_HOME"] = str(tmp_path / "home")
    command = [SLUICE, "up", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 60
        answer = None
        while time.monotonic() < deadline and answer is None:
            assert process.poll() is None, process.communicate()[1].decode()
            try:
                answer = httpx.get(f"https://127.0.0.1:{port}/api/v1/me", verify=trust, timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert answer is not None and answer.status_code == 401
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            plain_refused = False
        except httpx.HTTPError:
            plain_refused = True
        assert plain_refused, "plain HTTP must not be answered on the TLS port"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    assert f"https://127.0.0.1:{port}" in err.decode()


def test_tls_options_are_checked_before_start(invoke: Invoke, tmp_path: Path) -> None:
    cert, _key = self_signed(tmp_path)
    lone = invoke("server", "--tls-cert", str(cert))
    assert_clean_failure(lone)
    assert "--tls-cert and --tls-key go together" in lone.stderr
    missing = invoke("server", "--tls-cert", str(cert), "--tls-key", str(tmp_path / "nope.pem"))
    assert_clean_failure(missing)
    assert "nope.pem" in missing.stderr
