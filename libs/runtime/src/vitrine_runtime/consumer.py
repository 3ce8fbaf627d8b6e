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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
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


class EventConsumer:
    def __init__(
        self, service: str, *, max_attempts: int = 5, retry_backoff_s: float = 0.2
    ) -> None:
        self.service = service
        self.group_id = service
        self._db: Database | None = None
        self._publish_dead_letter: DeadLetterPublish | None = None
        self._max_attempts = max_attempts
        self._backoff_s = retry_backoff_s
        self._handlers: dict[str, tuple[type[Event], Handler[Any]]] = {}
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
        subscriber = broker.subscriber(
            *self.topics,
            group_id=self.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.service}",
            description=f"{self.service} consumes: {', '.join(self.event_types)}",
        )

        @subscriber
        async def on_message(message: KafkaMessage) -> None:
            record = message.raw_message
            incoming = IncomingMessage(
                topic=record.topic,  # type: ignore[union-attr]
                partition=record.partition,  # type: ignore[union-attr]
                offset=record.offset,  # type: ignore[union-attr]
                key=record.key,  # type: ignore[union-attr]
                value=record.value or b"",  # type: ignore[union-attr]
                headers={k: bytes(v) for k, v in (record.headers or ())},  # type: ignore[union-attr]
            )
            await self.handle(incoming)
            await message.ack()

    async def handle(self, message: IncomingMessage) -> Outcome:
        """Apply one message; never raises for a bad message (it is dead-lettered)."""
        event_type = message.header_event_type or "unknown"
        try:
            if message.header_event_type and message.header_event_type not in self._handlers:
                return self._count(message.topic, event_type, Outcome.SKIPPED)
            envelope = self._decode(message)
            if envelope is None:
                return self._count(message.topic, event_type, Outcome.SKIPPED)
            event_type = envelope.type
            token = tracing.set_correlation_id(envelope.correlation_id)
            try:
                with structlog.contextvars.bound_contextvars(
                    event_id=str(envelope.event_id),
                    event_type=envelope.type,
                    correlation_id=envelope.correlation_id,
                ):
                    return self._count(message.topic, event_type, await self._apply(envelope))
            finally:
                tracing.reset_correlation_id(token)
        except DeadLetter as dead:
            await self._dead_letter(message, dead.reason, dead.detail)
            return self._count(message.topic, event_type, Outcome.DEAD_LETTERED)

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


def _describe(exc: ValidationError) -> str:
    """A short, human-readable account of what failed validation."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
