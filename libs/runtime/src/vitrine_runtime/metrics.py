"""Prometheus metrics shared by every service, named by Prometheus conventions.

Every service exposes these at /metrics; service-specific metrics live with the service.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

from vitrine_runtime.logging import get_logger

_log = get_logger(__name__)

EVENTS_CONSUMED = Counter(
    "vitrine_events_consumed_total",
    "Events taken off a topic, by outcome (handled, duplicate, skipped, dead_lettered)",
    ["topic", "event_type", "outcome"],
)
EVENT_HANDLING_SECONDS = Histogram(
    "vitrine_event_handling_seconds",
    "Time to handle one event, including its database transaction",
    ["topic", "event_type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_HANDLING_ERRORS = Counter(
    "vitrine_event_handling_errors_total",
    "Failed attempts to handle an event (each retry counts)",
    ["topic", "event_type", "error"],
)
DEAD_LETTERS = Counter(
    "vitrine_dead_letters_total",
    "Messages sent to the service's dead-letter topic",
    ["topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "vitrine_consumer_lag_messages",
    "Messages behind the partition's high watermark, as last seen by this consumer",
    ["topic", "partition"],
)
OUTBOX_PUBLISHED = Counter(
    "vitrine_outbox_published_total", "Outbox events published to Kafka", ["topic"]
)
OUTBOX_BACKLOG = Gauge(
    "vitrine_outbox_backlog_events", "Outbox events written but not yet published"
)
OUTBOX_OLDEST_AGE = Gauge(
    "vitrine_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest outbox event not yet published (0 when none)",
)
HTTP_REQUESTS = Counter(
    "vitrine_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_REQUEST_SECONDS = Histogram(
    "vitrine_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class PeriodicGauge:
    """Keeps gauges fresh from a source that nobody reads otherwise (a SQL aggregate).

    `refresh` runs at start and then every `interval_s`; a failure is logged and retried at
    the next tick, so a database outage never stops the service, and the gauges keep
    their last value meanwhile.
    """

    def __init__(
        self, name: str, refresh: Callable[[], Awaitable[None]], *, interval_s: float = 15.0
    ) -> None:
        self.name = name
        self.interval_s = interval_s
        self._refresh = refresh
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"gauge-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("gauge_refresh_failed", gauge=self.name, error=repr(exc))
            await asyncio.sleep(self.interval_s)
