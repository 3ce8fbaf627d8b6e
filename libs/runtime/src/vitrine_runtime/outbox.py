"""Transactional outbox: write events with the change, publish them after commit.

`enqueue` is called inside the transaction that makes the change. The relay, one per
service (a Postgres advisory lock elects it), publishes unpublished rows in id order
with acks=all and marks them published. A crash between publishing and marking only
re-publishes; consumers deduplicate on event id, so the effect is exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from vitrine_runtime import metrics
from vitrine_runtime.db import Database
from vitrine_runtime.logging import get_logger
from vitrine_schemas.envelope import Envelope, Event

log = get_logger(__name__)

# publish(topic, key, payload, headers) -> awaitable that resolves once the broker has it
Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable[Awaitable[object]]]


async def enqueue(conn: asyncpg.Connection, envelope: Envelope[Event]) -> None:
    """Record an event in the caller's transaction; the relay publishes it after commit."""
    # One round trip: the row, and a NOTIFY that wakes the relay at once instead of at its
    # next poll (delivered only on commit).
    await conn.execute(
        "WITH added AS (INSERT INTO outbox (event_id, topic, key, event_type, payload, headers)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING 1)"
        " SELECT pg_notify('outbox_' || current_schema(), '') FROM added",
        envelope.event_id,
        envelope.data.topic,
        envelope.partition_key,
        envelope.type,
        envelope.to_bytes(),
        envelope.headers(),
    )


async def enqueue_many(conn: asyncpg.Connection, envelopes: Sequence[Envelope[Event]]) -> None:
    """`enqueue` for many events in one statement (batch handlers); order is kept."""
    if not envelopes:
        return
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, key, event_type, payload, headers)"
        " SELECT event_id, topic, key, event_type, payload, headers"
        " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::jsonb[])"
        " WITH ORDINALITY AS e(event_id, topic, key, event_type, payload, headers, n)"
        " ORDER BY n",
        [envelope.event_id for envelope in envelopes],
        [envelope.data.topic for envelope in envelopes],
        [envelope.partition_key for envelope in envelopes],
        [envelope.type for envelope in envelopes],
        [envelope.to_bytes() for envelope in envelopes],
        [envelope.headers() for envelope in envelopes],
    )
    await conn.execute("SELECT pg_notify('outbox_' || current_schema(), '')")


_PURGE_EVERY_S = 60.0


def _channel(schema: str) -> str:
    return f"outbox_{schema}"


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publish: Publish,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        linger_s: float = 0.005,
        retention_s: float = 3600.0,
    ) -> None:
        """`linger_s`: after a NOTIFY, wait this long for more commits before publishing,
        so a busy service publishes batches rather than one query round per commit.
        `retention_s`: published rows are deleted this long after publishing."""
        self._db = db
        self._publish = publish
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._linger_s = linger_s
        self._retention_s = retention_s
        self._next_backlog_check = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self.is_leader = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or broker went away: retry, never die
                self.is_leader = False
                log.warning("outbox_relay_error", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _lead(self) -> None:
        # A dedicated connection holds the leader lock and listens for new rows.
        self._listener = conn = await asyncpg.connect(
            self._db.url, server_settings={"search_path": self._db.schema}
        )
        try:
            while not await conn.fetchval(  # noqa: ASYNC110 - polls a lock, not an event
                "SELECT pg_try_advisory_lock(hashtext($1))", _channel(self._db.schema)
            ):
                await asyncio.sleep(self._poll_interval_s * 4)
            self.is_leader = True
            await conn.add_listener(_channel(self._db.schema), lambda *_: self._wake.set())
            log.info("outbox_relay_leading", schema=self._db.schema)
            next_purge = time.monotonic() + _PURGE_EVERY_S
            while True:
                published = await self.publish_pending()
                if time.monotonic() >= next_purge:
                    next_purge = time.monotonic() + _PURGE_EVERY_S
                    await self.purge_published(self._retention_s)
                if published < self._batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
                    if self._wake.is_set() and self._linger_s:
                        await asyncio.sleep(self._linger_s)
        finally:
            self.is_leader = False
            self._listener = None
            with contextlib.suppress(Exception):
                await conn.close()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events, in order; returns how many."""
        async with self._db.transaction() as conn:
            rows = await conn.fetch(
                "SELECT id, topic, key, payload, headers FROM outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if rows:
                # Send all, then wait for all acks: aiokafka batches the sends per
                # partition and keeps their order.
                acks = [
                    await self._publish(r["topic"], r["key"].encode(), r["payload"], r["headers"])
                    for r in rows
                ]
                await asyncio.gather(*acks)
                await conn.execute(
                    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                    [r["id"] for r in rows],
                )
                for topic, n in collections.Counter(r["topic"] for r in rows).items():
                    metrics.OUTBOX_PUBLISHED.labels(topic).inc(n)
            # The backlog gauges once a second: a query per batch would double the
            # relay's queries on a busy service.
            if time.monotonic() >= self._next_backlog_check:
                self._next_backlog_check = time.monotonic() + 1.0
                backlog = await conn.fetchrow(
                    "SELECT count(*) AS n,"
                    " coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
                    " FROM outbox WHERE published_at IS NULL"
                )
                pending = backlog["n"]  # this batch's rows are marked already: not counted
                metrics.OUTBOX_BACKLOG.set(pending)
                metrics.OUTBOX_OLDEST_AGE.set(float(backlog["age"]) if pending else 0.0)
        return len(rows)

    async def purge_published(self, older_than_s: float) -> int:
        result = await self._db.pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
            older_than_s,
        )
        return int(result.split()[-1])
