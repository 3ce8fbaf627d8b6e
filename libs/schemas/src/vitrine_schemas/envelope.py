"""The one envelope every Vitrine event travels in, and the base class of event payloads."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Contract(BaseModel):
    """Base of every model that crosses a service boundary: immutable, tolerant reader.

    Unknown fields are ignored, not rejected: a producer may add an optional field before
    every consumer has upgraded, and those consumers keep working.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)


class Event(Contract):
    """Payload of one event type. Subclasses name their type, version and topic."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[str]
    partition_field: ClassVar[str]

    @property
    def partition_key(self) -> str:
        """The value that keeps one entity's events in order on one partition."""
        return str(getattr(self, self.partition_field))


EventT = TypeVar("EventT", bound=Event)
_TRACE_ID = re.compile(r"^(?!0{32})[0-9a-f]{32}$")


class EnvelopeMetadata(BaseModel):
    """Metadata common to every event."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: uuid.UUID = Field(description="unique per event; consumers deduplicate on it")
    type: str = Field(description="event type, `<entity>.<past-tense verb>`")
    schema_version: int = Field(ge=1, description="version of the payload schema")
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, description="service that emitted the event")
    correlation_id: str = Field(
        min_length=1, description="W3C trace id of the flow this event belongs to"
    )
    partition_key: str = Field(min_length=1, description="Kafka message key")

    def headers(self) -> dict[str, str]:
        """Kafka headers that let a consumer route or skip without parsing the body, and
        carry the flow's W3C trace context to tools that read headers only."""
        headers = {
            "event-type": self.type,
            "event-id": str(self.event_id),
            "schema-version": str(self.schema_version),
            "correlation-id": self.correlation_id,
        }
        if _TRACE_ID.match(self.correlation_id):
            # The event is the span: its id gives a stable parent id for what it causes.
            headers["traceparent"] = f"00-{self.correlation_id}-{self.event_id.hex[:16]}-01"
        return headers


class Envelope(EnvelopeMetadata, Generic[EventT]):
    """An event: the common metadata around its typed payload in `data`."""

    data: EventT

    @classmethod
    def wrap(
        cls,
        data: EventT,
        *,
        producer: str,
        correlation_id: str | None = None,
        event_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope[EventT]:
        """Put a payload into an envelope; a new flow gets a fresh correlation id."""
        typed: Any = _TYPED.get(type(data))
        if typed is None:  # pydantic's own parametrisation cache costs more per call
            typed = _TYPED[type(data)] = Envelope[type(data)]  # type: ignore[misc]
        return cast(
            "Envelope[EventT]",
            typed(
                event_id=event_id or uuid.uuid4(),
                type=data.event_type,
                schema_version=data.schema_version,
                occurred_at=occurred_at or datetime.now(UTC),
                producer=producer,
                correlation_id=correlation_id or uuid.uuid4().hex,
                partition_key=data.partition_key,
                data=data,
            ),
        )

    def to_bytes(self) -> bytes:
        """The JSON body, as `model_dump_json().encode()` gives it: straight from
        pydantic's serializer, which makes bytes (once per emitted event)."""
        return self.__pydantic_serializer__.to_json(self)


_TYPED: dict[type[Event], Any] = {}


class RawEnvelope(EnvelopeMetadata):
    """An envelope whose payload is not parsed yet: the first step of decoding a message."""

    data: dict[str, Any]
