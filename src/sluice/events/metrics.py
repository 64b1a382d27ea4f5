"""Prometheus metrics. Counters and the revocation-lag histogram are observed by the worker where it
acts; the state gauges (grants by state, queue depth, oldest overdue revoke) are read from the store at
scrape time, so every server reports the same truth whichever process did the work."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sluice.domain.states import grant_state
from sluice.store.db import transaction
from sluice.store.grant_states import grant_due_to_expire, grant_revoke_outstanding, grant_work_due
from sluice.store.queries import break_glass_unreviewed
from sluice.store.tables import AccessRequest, Grant, Integration

log = logging.getLogger("sluice.metrics")

TARGET_OPERATIONS = Counter(
    "sluice_target_operations_total",
    "Grant and revoke calls on targets, by outcome.",
    ["integration", "operation", "outcome"],
)
TARGET_FAILURES = Counter(
    "sluice_target_failures_total",
    "Failed grant and revoke calls on targets (each is retried with backoff).",
    ["integration", "operation"],
)
TARGET_RETRIES = Counter(
    "sluice_target_retries_total",
    "Attempts on a row that had failed before.",
    ["integration", "operation"],
)
REVOCATION_LAG = Histogram(
    "sluice_revocation_lag_seconds",
    "From when a revoke was decided (a grant's end time, or the moment an early revoke was asked) "
    "until its access is gone from the target.",
    ["integration"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
CLAIM_TAKEOVERS = Counter(
    "sluice_claim_takeovers_total",
    "Grant rows taken over from a worker whose claim lapsed (it died or lost the store).",
    ["integration"],
)
ORPHANS_REMOVED = Counter(
    "sluice_orphans_removed_total",
    "Principals found in a target with no live grant, removed.",
    ["integration"],
)
WEBHOOK_DELIVERIES = Counter(
    "sluice_webhook_deliveries_total",
    "Webhook deliveries by webhook and outcome: delivered, failed (retried later), gave_up.",
    ["webhook", "outcome"],
)
NOTIFICATIONS = Counter(
    "sluice_notifications_total",
    "Notifications by channel and outcome: sent, failed (retried later), gave_up.",
    ["channel", "outcome"],
)


class StoreCollector(Collector):
    """Gauges computed from the grant rows when Prometheus scrapes."""

    def __init__(self, factory: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.factory = factory
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The store gauges, and `sluice_store_up`: while the store cannot be read the scrape still
        answers, with the process's own metrics and `sluice_store_up 0` instead of the gauges."""
        up = GaugeMetricFamily("sluice_store_up", "1 when the store answered this scrape, else 0.")
        try:
            gauges = list(self._gauges())
        except OperationalError as exc:
            log.warning("metrics: the store cannot be read: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges

    def _gauges(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        by_state = GaugeMetricFamily(
            "sluice_grants", "Grants by derived state and integration.", labels=["integration", "state"]
        )
        depth = GaugeMetricFamily(
            "sluice_queue_depth",
            "Grant rows whose target work is due now, held by a worker or waiting for one.",
            labels=["integration"],
        )
        overdue = GaugeMetricFamily(
            "sluice_oldest_overdue_revoke_seconds",
            "Seconds since the oldest revoke not yet done was decided: a grant's end time, or the moment "
            "an early revoke was asked (0 if none).",
            labels=["integration"],
        )
        unreviewed = GaugeMetricFamily(
            "sluice_break_glass_unreviewed",
            "Break-glass requests (approved by their requester in an emergency) not yet reviewed.",
        )
        with transaction(self.factory) as session:
            unreviewed.add_metric(
                [],
                int(
                    session.scalar(
                        select(func.count()).select_from(AccessRequest).where(break_glass_unreviewed())
                    )
                    or 0
                ),
            )
            names = {row[0]: row[1] for row in session.execute(select(Integration.id, Integration.name))}
            rows = session.execute(
                select(
                    Grant.integration_id,
                    Grant.desired,
                    Grant.actual,
                    Grant.revoke_failed_at.is_not(None),
                    func.count(),
                ).group_by(
                    Grant.integration_id, Grant.desired, Grant.actual, Grant.revoke_failed_at.is_not(None)
                )
            )
            counts: dict[tuple[str, str], int] = {}
            for integration_id, desired, actual, failed, count in rows:
                state = grant_state(desired, actual, revoke_failed=bool(failed)).value
                key = (names.get(integration_id, integration_id), state)
                counts[key] = counts.get(key, 0) + int(count)
            due = {
                row[0]: int(row[1])
                for row in session.execute(
                    select(Grant.integration_id, func.count())
                    .where(grant_work_due(now))
                    .group_by(Grant.integration_id)
                )
            }
            oldest: dict[str, datetime] = {}
            decided = func.coalesce(Grant.revoke_requested_at, Grant.ends_at)
            due_since = [
                # Ended in the store, not yet in the target: since the revoke was decided.
                select(Grant.integration_id, func.min(decided))
                .where(grant_revoke_outstanding())
                .group_by(Grant.integration_id),
                # Past its end time and not even ended in the store yet.
                select(Grant.integration_id, func.min(Grant.ends_at))
                .where(grant_due_to_expire(now))
                .group_by(Grant.integration_id),
            ]
            for query in due_since:
                for integration_id, since in session.execute(query):
                    if since is not None and (integration_id not in oldest or since < oldest[integration_id]):
                        oldest[integration_id] = since
        for (integration, state), count in sorted(counts.items()):
            by_state.add_metric([integration, state], count)
        for integration_id, name in sorted(names.items(), key=lambda item: item[1]):
            depth.add_metric([name], int(due.get(integration_id, 0)))
            ends_at = oldest.get(integration_id)
            overdue.add_metric([name], max(0.0, (now - ends_at).total_seconds()) if ends_at else 0.0)
        yield by_state
        yield depth
        yield overdue
        yield unreviewed


def registry_with_store(factory: sessionmaker[Session], clock: Callable[[], datetime]) -> CollectorRegistry:
    """A registry holding this process's counters plus the store gauges, for one `/metrics` endpoint."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ProcessMetrics())
    registry.register(StoreCollector(factory, clock))
    return registry


class _ProcessMetrics(Collector):
    """The default registry's metrics (this process's counters), re-exposed."""

    def collect(self) -> Iterator:  # type: ignore[type-arg]
        yield from REGISTRY.collect()


def serve_from_env(factory: sessionmaker[Session], clock: Callable[[], datetime]) -> bool:
    """A worker process has no API: with `SLUICE_METRICS_PORT` set it serves its own `/metrics`."""
    port = os.environ.get("SLUICE_METRICS_PORT")
    if not port:
        return False
    start_http_server(
        int(port),
        addr=os.environ.get("SLUICE_METRICS_HOST", "127.0.0.1"),
        registry=registry_with_store(factory, clock),
    )
    return True
