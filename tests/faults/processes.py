"""Real `sluice worker` / `sluice server` processes for the fault tests: started with an environment
of their own, logs to files, stopped (or killed) by their own handle only.

A test that needs many workers one after the other (the kill test starts one per SIGKILL) can fork
them from a zygote: one Python process that has imported what `sluice worker` imports, once, and forks
a child per worker that runs exactly what `sluice worker` runs (`serving.run_worker`). A child is a real
process on its own, killed by its process file descriptor (so never a reused pid); only the seconds of
interpreter start and imports, spent again by every fresh `sluice worker`, are saved."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

SLUICE = str(Path(sys.executable).with_name("sluice"))

# Run by the zygote: forks a `sluice worker` per line read (the child's log path); answers its pid.
_ZYGOTE = """
import os, signal, sys, threading, traceback
from sluice.cli import serving

assert threading.active_count() == 1, "a fork must not copy threads"
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(line.rstrip("\\n"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        code = 0
        try:
            serving.run_worker()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
"""


def sluice_env(store_url: str, home: Path, secret_key: str, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    return dict(
        base, SLUICE_DATABASE_URL=store_url, SLUICE_HOME=str(home), SLUICE_SECRET_KEY=secret_key, **extra
    )


@dataclass
class Proc:
    """A `sluice` command started here."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exited(self) -> bool:
        return self.process.poll() is not None

    def send(self, signo: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signo)

    def wait(self, timeout: float) -> bool:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        if not self.log.closed:
            self.log.close()

    def kill(self) -> None:
        _kill(self)

    def stop(self, timeout: float = 20) -> int:
        _stop(self, timeout)
        return int(self.process.returncode)


@dataclass
class ForkedWorker:
    """A `sluice worker` forked by the zygote; held by a pidfd, which names this process only."""

    name: str
    pid: int
    pidfd: int
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exited(self) -> bool:
        return self.wait(0)

    def send(self, signo: int) -> None:
        if self.pidfd < 0:
            return
        with contextlib.suppress(ProcessLookupError):  # gone already
            signal.pidfd_send_signal(self.pidfd, signo)

    def wait(self, timeout: float) -> bool:
        """The pidfd turns readable when the process has ended."""
        return self.pidfd < 0 or bool(select.select([self.pidfd], [], [], timeout)[0])

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1

    def kill(self) -> None:
        _kill(self)

    def stop(self, timeout: float = 20) -> None:
        _stop(self, timeout)


Worker = Proc | ForkedWorker


def _kill(proc: Worker) -> None:
    proc.send(signal.SIGKILL)
    assert proc.wait(10), f"{proc.name} did not die"
    proc.close()


def _stop(proc: Worker, timeout: float) -> None:
    proc.send(signal.SIGTERM)
    if not proc.wait(timeout):
        proc.send(signal.SIGKILL)
        proc.wait(10)
    proc.close()


@dataclass
class Zygote:
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, env: dict[str, str]) -> Zygote:
        process = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return cls(process)

    def fork(self, name: str, log_path: Path) -> ForkedWorker:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{log_path}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise AssertionError(f"the worker zygote exited ({self.process.wait(timeout=10)})")
        pid = int(answer)
        try:
            return ForkedWorker(name, pid, os.pidfd_open(pid), log_path)
        except ProcessLookupError as exc:
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise AssertionError(f"{name} died at once: {log[-3000:]}") from exc

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class Fleet:
    env: dict[str, str]
    logs: Path
    started: list[Worker] = field(default_factory=list)
    _zygote: Zygote | None = None

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Proc:
        """A `sluice` command with this fleet's environment (plus `env`, for this process alone)."""
        path = self.logs / f"{name}.log"
        log = path.open("wb")
        process = subprocess.Popen(
            [SLUICE, *args], env={**self.env, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
        proc = Proc(name, process, path, log)
        self.started.append(proc)
        return proc

    def fork_worker(self, name: str) -> ForkedWorker:
        """A worker forked from the zygote (started on first use, with this fleet's environment)."""
        if self._zygote is None:
            self._zygote = Zygote.start(self.env)
        proc = self._zygote.fork(name, self.logs / f"{name}.log")
        self.started.append(proc)
        return proc

    def wait_for(self, proc: Worker, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in proc.log_text():
                return
            if proc.exited():
                raise AssertionError(f"{proc.name} exited: {proc.log_text()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"{proc.name} did not log {text!r} within {timeout}s: {proc.log_text()[-3000:]}")

    def stop_all(self) -> None:
        for proc in self.started:
            proc.send(signal.SIGTERM)
        for proc in self.started:
            _stop(proc, 20)
        if self._zygote is not None:
            self._zygote.close()
