"""Real `sluice worker` / `sluice server` processes for the fault tests: started with an environment
of their own, logs to files, stopped (or killed) by their own handle only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SLUICE = str(Path(sys.executable).with_name("sluice"))


def sluice_env(store_url: str, home: Path, secret_key: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return dict(
        base, SLUICE_DATABASE_URL=store_url, SLUICE_HOME=str(home), SLUICE_SECRET_KEY=secret_key, **extra
    )


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=10)
        self.log.close()
        return code


@dataclass
class Fleet:
    env: dict[str, str]
    logs: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, *args: str) -> Proc:
        path = self.logs / f"{name}.log"
        log = path.open("wb")
        process = subprocess.Popen([SLUICE, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        proc = Proc(name, process, path, log)
        self.started.append(proc)
        return proc

    def wait_for(self, proc: Proc, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in proc.log_text():
                return
            if proc.process.poll() is not None:
                raise AssertionError(f"{proc.name} exited: {proc.log_text()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"{proc.name} did not log {text!r} within {timeout}s: {proc.log_text()[-3000:]}")

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.process.poll() is None:
                proc.process.terminate()
        for proc in self.started:
            try:
                proc.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait(timeout=10)
            if not proc.log.closed:
                proc.log.close()
