"""The worker's reliability knobs, read from the environment once at start (`SLUICE_*`), with defaults
that suit a real deployment. Tests build their own `Tuning` with short times."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    value = float(raw)
    if value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds")
    return value


def _count(name: str, default: int) -> int:
    raw = os.environ.get(name)
    value = int(raw) if raw and raw.strip() else default
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


@dataclass(frozen=True)
class Tuning:
    # How long a claim lasts without renewal. A live worker renews its claims every third of this
    # (`worker/claims.ClaimHeartbeat`), however long a target call takes; a dead worker's claims are
    # taken over by another worker once this has passed since its last renewal.
    claim_lease: timedelta = timedelta(seconds=6)
    # Capped exponential backoff between attempts on one row.
    backoff_base: timedelta = timedelta(seconds=1)
    backoff_cap: timedelta = timedelta(seconds=60)
    # A revoke failing for longer than this is shown as `revoke_failed` (and keeps being retried).
    revoke_failed_after: timedelta = timedelta(minutes=20)
    # Rows one worker claims per pass, per integration (so one busy target cannot take every slot).
    claim_per_integration: int = 25
    # Target calls run in a pool; no integration may use more than `per_integration` of its threads.
    threads: int = 8
    per_integration: int = 4
    orphan_sweep_every: timedelta = timedelta(minutes=5)
    # Compare targets with the store before the first pass (after a restore from backup).
    reconcile_on_start: bool = False
    # How often the audit chain's head is written to the log and to webhooks (when it moved).
    audit_head_every: timedelta = timedelta(hours=1)

    @classmethod
    def from_env(cls) -> Tuning:
        return cls(
            claim_lease=timedelta(seconds=_seconds("SLUICE_CLAIM_LEASE_SECONDS", 6)),
            backoff_base=timedelta(seconds=_seconds("SLUICE_BACKOFF_BASE_SECONDS", 1)),
            backoff_cap=timedelta(seconds=_seconds("SLUICE_BACKOFF_CAP_SECONDS", 60)),
            revoke_failed_after=timedelta(seconds=_seconds("SLUICE_REVOKE_FAILED_AFTER_SECONDS", 1200)),
            claim_per_integration=_count("SLUICE_CLAIM_PER_INTEGRATION", 25),
            threads=_count("SLUICE_WORKER_THREADS", 8),
            per_integration=_count("SLUICE_WORKER_PER_INTEGRATION", 4),
            orphan_sweep_every=timedelta(seconds=_seconds("SLUICE_ORPHAN_SWEEP_SECONDS", 300)),
            reconcile_on_start=os.environ.get("SLUICE_RECONCILE_ON_START", "").lower()
            in {"1", "true", "yes"},
            audit_head_every=timedelta(seconds=_seconds("SLUICE_AUDIT_HEAD_SECONDS", 3600)),
        )
