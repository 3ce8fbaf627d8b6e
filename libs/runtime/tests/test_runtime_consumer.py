"""EventConsumer against a real PostgreSQL; the dead-letter publisher is a recorder."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from vitrine_runtime.consumer import EventConsumer, IncomingMessage, Outcome, PermanentError
from vitrine_runtime.db import Database
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import LiveEnded, LiveStarted


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, dict[str, str]]] = []

    async def __call__(
        self, topic: str, key: bytes | None, value: bytes, headers: dict[str, str]
    ) -> None:
        self.sent.append((topic, key, value, headers))


def started(session_id: str = "s1") -> Envelope[LiveStarted]:
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


def message(
    envelope: Envelope[Any] | None = None, value: bytes | None = None, offset: int = 0
) -> IncomingMessage:
    body = value if value is not None else envelope.to_bytes()  # type: ignore[union-attr]
    headers = {k: v.encode() for k, v in envelope.headers().items()} if envelope else {}
    return IncomingMessage("live-sessions", 0, offset, b"s1", body, headers)


@pytest.fixture
async def ready(database: Database) -> tuple[Database, EventConsumer, DeadLetters, list[str]]:
    await database.migrate()
    await database.pool.execute("CREATE TABLE seen (session_id text)")
    consumer = EventConsumer("svc", max_attempts=3, retry_backoff_s=0.001)
    dead = DeadLetters()
    consumer.bind(database, dead)
    calls: list[str] = []

    @consumer.on(LiveStarted)
    async def on_started(envelope: Envelope[LiveStarted], conn: asyncpg.Connection) -> None:
        calls.append(envelope.data.session_id)
        if envelope.data.session_id == "boom":
            raise RuntimeError("handler bug")
        if envelope.data.session_id == "reject":
            raise PermanentError("session is not allowed")
        await conn.execute("INSERT INTO seen VALUES ($1)", envelope.data.session_id)

    return database, consumer, dead, calls


async def test_an_event_is_applied_once_however_often_it_arrives(ready: Any) -> None:
    database, consumer, dead, _ = ready
    envelope = started()
    assert await consumer.handle(message(envelope)) is Outcome.HANDLED
    assert await consumer.handle(message(envelope, offset=1)) is Outcome.DUPLICATE
    assert await database.pool.fetchval("SELECT count(*) FROM seen") == 1
    assert dead.sent == []


async def test_undecodable_bytes_go_to_the_dead_letter_topic_with_reason(ready: Any) -> None:
    _, consumer, dead, calls = ready
    outcome = await consumer.handle(message(value=b"\x00not json", offset=7))
    assert outcome is Outcome.DEAD_LETTERED
    topic, key, value, headers = dead.sent[0]
    assert topic == "dlq.svc"
    assert value == b"\x00not json"  # original bytes, untouched
    assert key == b"s1"
    assert headers["dlq-reason"] == "malformed_envelope"
    assert headers["dlq-source-offset"] == "7"
    assert calls == []


async def test_a_payload_that_breaks_its_contract_is_dead_lettered(ready: Any) -> None:
    _, consumer, dead, _ = ready
    body = json.loads(started().to_bytes())
    del body["data"]["creator_id"]
    await consumer.handle(message(value=json.dumps(body).encode()))
    assert dead.sent[0][3]["dlq-reason"] == "invalid_payload"
    assert "creator_id" in dead.sent[0][3]["dlq-detail"]


async def test_events_without_a_handler_are_skipped_not_dead_lettered(ready: Any) -> None:
    _, consumer, dead, _ = ready
    ended = Envelope.wrap(
        LiveEnded.model_validate(
            {"session_id": "s1", "creator_id": "c1", "ended_at": "2026-11-22T11:00:00Z"}
        ),
        producer="test",
    )
    assert await consumer.handle(message(ended)) is Outcome.SKIPPED
    assert dead.sent == []


async def test_a_failing_handler_is_retried_then_dead_lettered(ready: Any) -> None:
    database, consumer, dead, calls = ready
    assert await consumer.handle(message(started("boom"))) is Outcome.DEAD_LETTERED
    assert calls == ["boom"] * 3
    assert dead.sent[0][3]["dlq-reason"] == "handler_failed"
    # The failed attempts left no dedup row behind: a replay after a fix is applied.
    assert await database.pool.fetchval("SELECT count(*) FROM processed_events") == 0


async def test_a_rejected_event_is_dead_lettered_without_retries(ready: Any) -> None:
    _, consumer, dead, calls = ready
    assert await consumer.handle(message(started("reject"))) is Outcome.DEAD_LETTERED
    assert calls == ["reject"]
    assert dead.sent[0][3]["dlq-reason"] == "rejected"


async def test_a_newer_schema_version_is_not_guessed_at(ready: Any) -> None:
    _, consumer, dead, calls = ready
    body = json.loads(started().to_bytes())
    body["schema_version"] = 2
    await consumer.handle(message(value=json.dumps(body).encode()))
    assert dead.sent[0][3]["dlq-reason"] == "unsupported_schema_version"
    assert calls == []


# --- batches: one transaction, bulk inbox, per-event dead letters -----------------------


@pytest.fixture
async def batching(
    database: Database,
) -> tuple[Database, EventConsumer, DeadLetters, list[list[str]]]:
    await database.migrate()
    await database.pool.execute("CREATE TABLE seen (session_id text, kind text)")
    consumer = EventConsumer("svc", max_attempts=2, retry_backoff_s=0.001, batch_size=100)
    dead = DeadLetters()
    consumer.bind(database, dead)
    runs: list[list[str]] = []

    @consumer.on_batch(LiveStarted)
    async def on_started(
        envelopes: Sequence[Envelope[LiveStarted]], conn: asyncpg.Connection
    ) -> None:
        ids = [e.data.session_id for e in envelopes]
        runs.append(ids)
        if "reject" in ids:
            raise PermanentError("session is not allowed")
        await conn.executemany("INSERT INTO seen VALUES ($1, 'started')", [(i,) for i in ids])

    @consumer.on(LiveEnded)
    async def on_ended(envelope: Envelope[LiveEnded], conn: asyncpg.Connection) -> None:
        # Sees the rows of the run before it in the same transaction: order is kept.
        started = await conn.fetchval(
            "SELECT count(*) FROM seen WHERE session_id = $1 AND kind = 'started'",
            envelope.data.session_id,
        )
        await conn.execute(
            "INSERT INTO seen VALUES ($1, $2)", envelope.data.session_id, f"ended-after-{started}"
        )

    return database, consumer, dead, runs


def ended(session_id: str) -> Envelope[LiveEnded]:
    return Envelope.wrap(
        LiveEnded.model_validate(
            {"session_id": session_id, "creator_id": "c1", "ended_at": "2026-11-22T11:00:00Z"}
        ),
        producer="test",
    )


async def seen_rows(database: Database) -> list[tuple[str, str]]:
    rows = await database.pool.fetch("SELECT session_id, kind FROM seen ORDER BY 1, 2")
    return [(r["session_id"], r["kind"]) for r in rows]


async def test_a_batch_is_applied_in_order_with_runs_going_to_the_batch_handler(
    batching: Any,
) -> None:
    database, consumer, dead, runs = batching
    a, b, c = started("a"), started("b"), started("c")
    batch = [message(a), message(b), message(ended("a")), message(c), message(a)]
    outcomes = await consumer.handle_batch(batch)
    assert outcomes == [Outcome.HANDLED] * 4 + [Outcome.DUPLICATE]  # a twice in one batch
    assert runs == [["a", "b"], ["c"]]  # split by the ended event, in topic order
    assert await seen_rows(database) == [
        ("a", "ended-after-1"),
        ("a", "started"),
        ("b", "started"),
        ("c", "started"),
    ]
    # Redelivered after a crash before the offset commit: nothing applies twice.
    assert await consumer.handle_batch(batch) == [Outcome.DUPLICATE] * 5
    assert len(await seen_rows(database)) == 4
    assert dead.sent == []
    assert await database.pool.fetchval("SELECT count(*) FROM processed_events") == 4


async def test_a_bad_event_in_a_batch_is_dead_lettered_alone(batching: Any) -> None:
    database, consumer, dead, runs = batching
    batch = [
        message(started("x"), offset=10),
        message(value=b"\x00garbage", offset=11),
        message(started("reject"), offset=12),
        message(started("y"), offset=13),
    ]
    outcomes = await consumer.handle_batch(batch)
    assert outcomes == [
        Outcome.HANDLED,
        Outcome.DEAD_LETTERED,
        Outcome.DEAD_LETTERED,
        Outcome.HANDLED,
    ]
    # The whole batch failed once, then each event went alone.
    assert runs == [["x", "reject", "y"], ["x"], ["reject"], ["y"]]
    assert await seen_rows(database) == [("x", "started"), ("y", "started")]
    assert [(h["dlq-reason"], h["dlq-source-offset"]) for *_, h in dead.sent] == [
        ("malformed_envelope", "11"),
        ("rejected", "12"),
    ]
    # The rejected event left no inbox row: a replay after a fix is applied.
    assert await database.pool.fetchval("SELECT count(*) FROM processed_events") == 2
