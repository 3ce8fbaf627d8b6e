"""Idempotent event consumption with dead letters.

One `EventConsumer` per service joins one consumer group on every topic its handlers
need. For each message it:

1. decodes the envelope and the typed payload; a message that does not decode goes to
   the service's dead-letter topic with the reason and its original bytes;
2. skips event types it has no handler for (topics may gain event types);
3. opens a transaction, records the event id in `processed_events` (a redelivered event
   finds its row and is skipped) and runs the handler in that same transaction, so the
   effect and the dedup record commit together or not at all;
4. retries a failing handler a few times, then dead-letters it; waits out database and
   broker outages instead (dead-lettering every message during an outage helps nobody);
5. commits the offset only after 1-4, so nothing is lost if the process dies mid-way.

Batches (`batch_size` > 1, for services whose throughput matters): the consumer takes up
to `batch_size` records per poll and applies all of them in ONE transaction: one bulk
inbox insert finds the new event ids, runs of consecutive events with a batch handler
(`on_batch`) go to it as a list, other events to their per-event handler, and the
offsets are committed once after the commit. If anything in the batch fails for a reason
other than an outage, the transaction is rolled back and the batch is applied again one
event per transaction, so a bad event is retried and dead-lettered alone, exactly as in
the per-event mode.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pydantic import ValidationError

from vitrine_runtime import metrics, tracing
from vitrine_runtime.db import Database
from vitrine_runtime.logging import get_logger
from vitrine_schemas.envelope import Envelope, Event, RawEnvelope
from vitrine_schemas.topics import dead_letter_topic

log = get_logger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[Envelope[E], asyncpg.Connection], Awaitable[None]]
# A batch handler gets consecutive new events of its type, in topic order, in one
# transaction; it must give the same effect as the per-event handler applied to each.
BatchHandler = Callable[[Sequence[Envelope[E]], asyncpg.Connection], Awaitable[None]]
# publish(topic, key, value, headers) -> resolves once the broker has the message
DeadLetterPublish = Callable[[str, bytes | None, bytes, dict[str, str]], Awaitable[None]]

# Errors that mean "the infrastructure is down", not "this event is bad".
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)

# How long an idle batch subscriber waits for records per poll (it returns at once when
# records are there), and FastStream sleeps as long again after an empty poll.
_BATCH_POLL_MS = 50


class PermanentError(Exception):
    """The event can never be handled as it is: dead-letter it without retrying."""


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A Kafka record, free of any client library's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)

    @property
    def header_event_type(self) -> str | None:
        raw = self.headers.get("event-type")
        return raw.decode(errors="replace") if raw is not None else None


class DeadLetter(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class _Decoded:
    """A message of the batch that decoded to an event this consumer handles."""

    index: int
    message: IncomingMessage
    envelope: Envelope[Event]


class EventConsumer:
    def __init__(
        self,
        service: str,
        *,
        max_attempts: int = 5,
        retry_backoff_s: float = 0.2,
        batch_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.service = service
        self.group_id = service
        self.batch_size = batch_size
        self._db: Database | None = None
        self._publish_dead_letter: DeadLetterPublish | None = None
        self._max_attempts = max_attempts
        self._backoff_s = retry_backoff_s
        self._handlers: dict[str, tuple[type[Event], Handler[Any]]] = {}
        self._batch_handlers: dict[str, BatchHandler[Any]] = {}
        self._envelope_types: dict[str, type[Envelope[Event]]] = {}
        self._attached = False

    def bind(self, db: Database, publish_dead_letter: DeadLetterPublish) -> None:
        """Give the consumer its database and dead-letter publisher once they exist."""
        self._db = db
        self._publish_dead_letter = publish_dead_letter

    def on(self, event_cls: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        """Register the handler of one event type."""

        def register(handler: Handler[E]) -> Handler[E]:
            if event_cls.event_type in self._handlers:
                raise ValueError(f"{event_cls.event_type} already has a handler")
            self._handlers[event_cls.event_type] = (event_cls, handler)
            return handler

        return register

    def on_batch(self, event_cls: type[E]) -> Callable[[BatchHandler[E]], BatchHandler[E]]:
        """Register a batch handler of one event type (used when `batch_size` > 1).

        Without a per-event handler of the type, the batch handler also serves one event
        at a time (a list of one) when a failed batch is applied event by event.
        """

        def register(handler: BatchHandler[E]) -> BatchHandler[E]:
            event_type = event_cls.event_type
            if event_type in self._batch_handlers:
                raise ValueError(f"{event_type} already has a batch handler")
            self._batch_handlers[event_type] = handler
            if event_type not in self._handlers:

                async def one(envelope: Envelope[E], conn: asyncpg.Connection) -> None:
                    await handler([envelope], conn)

                self._handlers[event_type] = (event_cls, one)
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return sorted({cls.topic for cls, _ in self._handlers.values()})

    @property
    def event_types(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def event_classes(self) -> list[type[Event]]:
        return [cls for _, (cls, _) in sorted(self._handlers.items())]

    def attach(self, broker: KafkaBroker) -> None:
        """Subscribe to every topic the handlers need, as one consumer group member."""
        if not self._handlers or self._attached:
            return
        self._attached = True
        title = f"{self.service}"
        description = f"{self.service} consumes: {', '.join(self.event_types)}"
        if self.batch_size == 1:
            subscriber = broker.subscriber(
                *self.topics,
                group_id=self.group_id,
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.MANUAL,
                title=title,
                description=description,
                decoder=_no_body,
            )

            @subscriber
            async def on_message(message: KafkaMessage) -> None:
                await self.handle(_incoming(message.raw_message))
                await message.ack()

            return

        batch_subscriber = broker.subscriber(
            *self.topics,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            title=title,
            description=description,
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=_BATCH_POLL_MS,
            decoder=_no_body,
        )

        @batch_subscriber
        async def on_batch(message: KafkaMessage) -> None:
            records = message.raw_message
            batch = records if isinstance(records, tuple) else (records,)
            await self.handle_batch([_incoming(record) for record in batch])
            await message.ack()  # one offset commit for the whole batch

    # --- one event at a time ------------------------------------------------------------

    async def handle(self, message: IncomingMessage) -> Outcome:
        """Apply one message; never raises for a bad message (it is dead-lettered)."""
        event_type = message.header_event_type or "unknown"
        try:
            envelope = self._decode_known(message)
            if envelope is None:
                return self._count(message.topic, event_type, Outcome.SKIPPED)
            return await self._apply_one(message, envelope)
        except DeadLetter as dead:
            await self._dead_letter(message, dead.reason, dead.detail)
            return self._count(message.topic, event_type, Outcome.DEAD_LETTERED)

    async def _apply_one(self, message: IncomingMessage, envelope: Envelope[Event]) -> Outcome:
        token = tracing.set_correlation_id(envelope.correlation_id)
        try:
            with structlog.contextvars.bound_contextvars(
                event_id=str(envelope.event_id),
                event_type=envelope.type,
                correlation_id=envelope.correlation_id,
            ):
                return self._count(message.topic, envelope.type, await self._apply(envelope))
        finally:
            tracing.reset_correlation_id(token)

    def _decode_known(self, message: IncomingMessage) -> Envelope[Event] | None:
        """The envelope, or None for a type without a handler; DeadLetter if undecodable."""
        header_type = message.header_event_type
        if header_type and header_type not in self._handlers:
            return None
        if header_type:
            # The common case in one pass over the JSON; anything odd (a body of another
            # type or version than its header says, a bad payload) takes the careful path
            # below, which tells the dead-letter reasons apart.
            try:
                envelope = self._envelope_type(header_type).model_validate_json(message.value)
            except ValidationError:
                pass
            else:
                if (
                    envelope.type == header_type
                    and envelope.schema_version == envelope.data.schema_version
                ):
                    return envelope
        return self._decode(message)

    def _envelope_type(self, event_type: str) -> type[Envelope[Event]]:
        cached = self._envelope_types.get(event_type)
        if cached is None:
            event_cls, _ = self._handlers[event_type]
            cached = self._envelope_types[event_type] = Envelope[event_cls]  # type: ignore[valid-type]
        return cached

    def _decode(self, message: IncomingMessage) -> Envelope[Event] | None:
        try:
            raw = RawEnvelope.model_validate_json(message.value)
        except ValidationError as exc:
            raise DeadLetter("malformed_envelope", _describe(exc)) from exc
        registered = self._handlers.get(raw.type)
        if registered is None:
            return None
        event_cls, _ = registered
        if raw.schema_version > event_cls.schema_version:
            raise DeadLetter(
                "unsupported_schema_version",
                f"{raw.type} v{raw.schema_version}; this consumer knows up to"
                f" v{event_cls.schema_version}",
            )
        try:
            data = event_cls.model_validate(raw.data)
        except ValidationError as exc:
            raise DeadLetter("invalid_payload", _describe(exc)) from exc
        return Envelope[event_cls](**{**raw.model_dump(exclude={"data"}), "data": data})  # type: ignore[valid-type]

    async def _apply(self, envelope: Envelope[Event]) -> Outcome:
        _, handler = self._handlers[envelope.type]
        assert self._db is not None, "bind() the consumer before it handles events"
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with self._db.transaction() as conn:
                    claimed = await conn.fetchval(
                        "INSERT INTO processed_events (consumer, event_id, event_type)"
                        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                        self.group_id,
                        envelope.event_id,
                        envelope.type,
                    )
                    if not claimed:
                        log.info("event_duplicate_skipped")
                        return Outcome.DUPLICATE
                    await handler(envelope, conn)
                metrics.EVENT_HANDLING_SECONDS.labels(envelope.data.topic, envelope.type).observe(
                    time.perf_counter() - started
                )
                log.debug("event_handled")
                return Outcome.HANDLED
            except (PermanentError, ValidationError) as exc:
                raise DeadLetter("rejected", str(exc)) from exc
            except TRANSIENT_ERRORS as exc:
                self._count_error(envelope, exc)
                log.warning("event_transient_failure", error=repr(exc), attempt=attempt)
                await asyncio.sleep(min(self._backoff_s * 2 ** min(attempt, 6), 10.0))
            except Exception as exc:
                self._count_error(envelope, exc)
                log.exception("event_handler_failed", attempt=attempt)
                if attempt >= self._max_attempts:
                    raise DeadLetter(
                        "handler_failed", f"{type(exc).__name__}: {exc} (after {attempt} tries)"
                    ) from exc
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))

    # --- a batch in one transaction -----------------------------------------------------

    async def handle_batch(self, messages: Sequence[IncomingMessage]) -> list[Outcome]:
        """Apply a polled batch, in order; one outcome per message. Never raises for a
        bad message: it is dead-lettered alone and the rest of the batch is applied."""
        outcomes: list[Outcome | None] = [None] * len(messages)
        decoded: list[_Decoded] = []
        for index, message in enumerate(messages):
            try:
                envelope = self._decode_known(message)
            except DeadLetter as dead:
                await self._dead_letter(message, dead.reason, dead.detail)
                outcomes[index] = self._count(
                    message.topic, message.header_event_type or "unknown", Outcome.DEAD_LETTERED
                )
                continue
            if envelope is None:
                outcomes[index] = self._count(
                    message.topic, message.header_event_type or "unknown", Outcome.SKIPPED
                )
            else:
                decoded.append(_Decoded(index, message, envelope))
        if decoded:
            applied = await self._apply_batch(decoded)
            if applied is None:  # something in the batch failed: one event at a time
                for item in decoded:
                    outcomes[item.index] = await self._handle_decoded(item)
            else:
                # Counted per (topic, type, outcome) rather than per event: one labels()
                # lookup per group on the hot path.
                counts: collections.Counter[tuple[str, str, Outcome]] = collections.Counter()
                for item, outcome in zip(decoded, applied, strict=True):
                    outcomes[item.index] = outcome
                    counts[item.message.topic, item.envelope.type, outcome] += 1
                for (topic, event_type, outcome), n in counts.items():
                    metrics.EVENTS_CONSUMED.labels(topic, event_type, outcome.value).inc(n)
        return [outcome if outcome is not None else Outcome.SKIPPED for outcome in outcomes]

    async def _handle_decoded(self, item: _Decoded) -> Outcome:
        try:
            return await self._apply_one(item.message, item.envelope)
        except DeadLetter as dead:
            await self._dead_letter(item.message, dead.reason, dead.detail)
            return self._count(item.message.topic, item.envelope.type, Outcome.DEAD_LETTERED)

    async def _apply_batch(self, items: Sequence[_Decoded]) -> list[Outcome] | None:
        """Apply the events in one transaction; None if it failed other than by an outage."""
        assert self._db is not None, "bind() the consumer before it handles events"
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                async with self._db.transaction() as conn:
                    outcomes = await self._apply_in(conn, items)
            except TRANSIENT_ERRORS as exc:
                log.warning("batch_transient_failure", error=repr(exc), attempt=attempt)
                await asyncio.sleep(min(self._backoff_s * 2 ** min(attempt, 6), 10.0))
                continue
            except Exception as exc:
                log.warning(
                    "batch_failed_applying_one_by_one", error=repr(exc)[:500], events=len(items)
                )
                return None
            share = (time.perf_counter() - started) / len(items)
            per_type = collections.Counter(
                (item.envelope.data.topic, item.envelope.type) for item in items
            )
            for (topic, event_type), n in per_type.items():
                histogram = metrics.EVENT_HANDLING_SECONDS.labels(topic, event_type)
                for _ in range(n):  # one observation per event, as in the per-event mode
                    histogram.observe(share)
            return outcomes

    async def _apply_in(self, conn: asyncpg.Connection, items: Sequence[_Decoded]) -> list[Outcome]:
        claimed = {
            row["event_id"]
            for row in await conn.fetch(
                "INSERT INTO processed_events (consumer, event_id, event_type)"
                " SELECT $1, e.event_id, e.event_type"
                " FROM unnest($2::uuid[], $3::text[]) AS e(event_id, event_type)"
                " ON CONFLICT DO NOTHING RETURNING event_id",
                self.group_id,
                [item.envelope.event_id for item in items],
                [item.envelope.type for item in items],
            )
        }
        outcomes: list[Outcome] = []
        fresh: list[Envelope[Event]] = []
        for item in items:
            event_id = item.envelope.event_id
            if event_id in claimed:
                claimed.discard(event_id)  # a second copy in the same batch is a duplicate
                outcomes.append(Outcome.HANDLED)
                fresh.append(item.envelope)
            else:
                outcomes.append(Outcome.DUPLICATE)
        duplicates = outcomes.count(Outcome.DUPLICATE)
        if duplicates:
            log.info("event_duplicates_skipped", count=duplicates)
        # Consecutive events of one type with a batch handler go to it together; the
        # rest one by one, so the topic order of an entity's events is kept.
        run: list[Envelope[Event]] = []
        for envelope in fresh:
            if run and run[0].type != envelope.type:
                await self._run_batch(run, conn)
                run = []
            if envelope.type in self._batch_handlers:
                run.append(envelope)
                continue
            await self._run_one(envelope, conn)
        if run:
            await self._run_batch(run, conn)
        return outcomes

    async def _run_batch(self, run: list[Envelope[Event]], conn: asyncpg.Connection) -> None:
        await self._batch_handlers[run[0].type](run, conn)

    async def _run_one(self, envelope: Envelope[Event], conn: asyncpg.Connection) -> None:
        _, handler = self._handlers[envelope.type]
        token = tracing.set_correlation_id(envelope.correlation_id)
        try:
            # The handler's log lines carry the event's flow, as in the per-event path.
            with structlog.contextvars.bound_contextvars(
                event_id=str(envelope.event_id),
                event_type=envelope.type,
                correlation_id=envelope.correlation_id,
            ):
                await handler(envelope, conn)
        finally:
            tracing.reset_correlation_id(token)

    # --- dead letters -------------------------------------------------------------------

    async def _dead_letter(self, message: IncomingMessage, reason: str, detail: str) -> None:
        headers = {k: v.decode(errors="replace") for k, v in message.headers.items()}
        headers.update(
            {
                "dlq-reason": reason,
                "dlq-detail": detail[:4000],
                "dlq-consumer": self.group_id,
                "dlq-source-topic": message.topic,
                "dlq-source-partition": str(message.partition),
                "dlq-source-offset": str(message.offset),
                "dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        topic = dead_letter_topic(self.service)
        assert self._publish_dead_letter is not None, "bind() the consumer first"
        attempt = 0
        # The offset is committed after this returns, so the dead letter must be durable
        # first: keep trying rather than drop the message.
        while True:
            attempt += 1
            try:
                await self._publish_dead_letter(topic, message.key, message.value, headers)
                break
            except Exception as exc:
                log.warning("dead_letter_publish_failed", error=repr(exc), attempt=attempt)
                await asyncio.sleep(min(self._backoff_s * 2**attempt, 10.0))
        metrics.DEAD_LETTERS.labels(message.topic, reason).inc()
        log.warning(
            "event_dead_lettered",
            reason=reason,
            detail=detail[:500],
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )

    @staticmethod
    def _count(topic: str, event_type: str, outcome: Outcome) -> Outcome:
        metrics.EVENTS_CONSUMED.labels(topic, event_type, outcome.value).inc()
        return outcome

    @staticmethod
    def _count_error(envelope: Envelope[Event], exc: BaseException) -> None:
        metrics.EVENT_HANDLING_ERRORS.labels(
            envelope.data.topic, envelope.type, type(exc).__name__
        ).inc()


async def _no_body(_: Any) -> None:
    """FastStream's decoder would json-parse every body (and re-parse every record of a
    batch) for a handler that reads only the raw records: skip that work."""


def _incoming(record: Any) -> IncomingMessage:
    """An aiokafka ConsumerRecord as an IncomingMessage."""
    return IncomingMessage(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers={k: bytes(v) for k, v in (record.headers or ())},
    )


def _describe(exc: ValidationError) -> str:
    """A short, human-readable account of what failed validation."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
