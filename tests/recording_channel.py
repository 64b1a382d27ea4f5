"""A notification channel for tests: records every notice it is given, and fails, hangs or answers
with references as the test says. Real channels (email, Teams, Slack) are tested against real
servers on loopback; this one tests the core that feeds them."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from sluice.services.notify.channels import ChannelError, Notice


@dataclass
class RecordingChannel:
    name: str
    notices: list[Notice] = field(default_factory=list)
    # Each call takes the next: None answers, a ChannelError is raised. Empty: always answers.
    failures: list[ChannelError | None] = field(default_factory=list)
    always_fail: ChannelError | None = None
    release: threading.Event | None = None  # when set, every send waits for it (a hanging channel)
    calls: int = 0
    _numbers: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, notice: Notice) -> str | None:
        if self.release is not None:
            self.release.wait(30)
        with self._lock:
            self.calls += 1
            failure = self.failures.pop(0) if self.failures else self.always_fail
            if failure is not None:
                raise failure
            self.notices.append(notice)
            return f"{self.name}-ref-{next(self._numbers)}"

    def heard(self, topic: str | None = None) -> list[tuple[str, str, str | None]]:
        """(topic, role, recipient email or destination) of each notice, optionally of one topic."""
        return [
            (n.topic, n.role, n.recipient_email or n.destination)
            for n in self.notices
            if topic is None or n.topic == topic
        ]
