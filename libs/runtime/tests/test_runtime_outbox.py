"""Outbox relay against a real PostgreSQL; the broker is a recorder."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from vitrine_runtime.db import Database
from vitrine_runtime.outbox import OutboxRelay, enqueue, enqueue_many
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import LiveStarted


def started(session_id: str) -> Envelope[Any]:
    return Envelope.wrap(
        LiveStarted.model_validate(
            {
                "session_id": session_id,
                "creator_id": "c1",
                "title": "t",
                "started_at": "2026-11-22T10:00:00Z",
            }
        ),
        producer="test",
    )


class Broker:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[tuple[str, bytes]] = []

    async def __call__(
        self, topic: str, key: bytes, value: bytes, headers: dict[str, str]
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(ConnectionError("broker down"))
        else:
            self.published.append((topic, key))
            future.set_result(None)
        return future


async def test_only_committed_events_are_published_in_order(database: Database) -> None:
    await database.migrate()
    async with database.transaction() as conn:
        for n in range(3):
            await enqueue(conn, started(f"s{n}"))
    try:
        async with database.transaction() as conn:
            await enqueue(conn, started("rolled-back"))
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    broker = Broker()
    relay = OutboxRelay(database, broker)
    assert await relay.publish_pending() == 3
    assert [key for _, key in broker.published] == [b"s0", b"s1", b"s2"]
    assert await relay.publish_pending() == 0  # marked published, not sent twice


async def test_events_stay_pending_while_the_broker_is_down(database: Database) -> None:
    await database.migrate()
    async with database.transaction() as conn:
        await enqueue(conn, started("s1"))
    failing = OutboxRelay(database, Broker(fail=True))
    with contextlib.suppress(ConnectionError):
        await failing.publish_pending()
    pending = await database.pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert pending == 1
    recovered = Broker()
    assert await OutboxRelay(database, recovered).publish_pending() == 1
    assert recovered.published == [("live-sessions", b"s1")]


async def test_the_running_relay_publishes_soon_after_commit(database: Database) -> None:
    await database.migrate()
    broker = Broker()
    relay = OutboxRelay(database, broker, poll_interval_s=5.0)
    await relay.start()
    try:
        for _ in range(100):
            if relay.is_leader:
                break
            await asyncio.sleep(0.05)
        async with database.transaction() as conn:
            await enqueue(conn, started("s9"))
        for _ in range(100):  # well under the 5 s poll: LISTEN/NOTIFY woke it
            if broker.published:
                break
            await asyncio.sleep(0.02)
        assert broker.published == [("live-sessions", b"s9")]
    finally:
        await relay.stop()


async def test_many_events_enqueued_at_once_keep_their_order(database: Database) -> None:
    await database.migrate()
    envelopes = [started(f"s{n}") for n in range(50)]
    async with database.transaction() as conn:
        await enqueue_many(conn, envelopes)
    broker = Broker()
    assert await OutboxRelay(database, broker).publish_pending() == 50
    assert [key for _, key in broker.published] == [f"s{n}".encode() for n in range(50)]
    stored = await database.pool.fetch("SELECT event_id, headers FROM outbox ORDER BY id")
    assert [row["event_id"] for row in stored] == [e.event_id for e in envelopes]
    assert stored[0]["headers"] == envelopes[0].headers()
