"""How the app's request threads share the interpreter. A request that talks to the store lets go of
the interpreter at every round trip and must wait to get it back; with CPython's default turn of
5 ms, a CPU-heavy request beside it holds it that long each time. With a tag batch of 5,000 changes
being built in one thread, a revoke of a few dozen statements in another took half a second instead
of a few hundredths (`tests/api/test_revoke_under_bulk_write.py`). Shorter turns keep a request
answered in about its own time whatever runs beside it; the interpreter switches more often only
while threads actually contend."""

from __future__ import annotations

import sys

TURN_SECONDS = 0.0005


def share_fairly() -> None:
    """Give every thread of this process turns of `TURN_SECONDS` (a setting of the whole process)."""
    sys.setswitchinterval(TURN_SECONDS)
