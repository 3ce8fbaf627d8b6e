"""Every event survives the trip through an envelope, bytes and a raw decode.

Uses the realistic payloads in examples.py, one per event type.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from examples import EXAMPLE_BY_TYPE, EXAMPLES

from vitrine_schemas.envelope import Envelope, Event, RawEnvelope
from vitrine_schemas.events import ALL_EVENTS, EVENTS_BY_TYPE
from vitrine_schemas.export import schema_file_name

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "jsonschema"


def test_there_is_one_example_of_every_event() -> None:
    assert sorted(EXAMPLE_BY_TYPE) == sorted(EVENTS_BY_TYPE)
    assert len(EXAMPLES) == len(ALL_EVENTS)


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.event_type for e in EXAMPLES])
def test_envelope_round_trip(example: Event) -> None:
    event_id = uuid.uuid4()
    occurred_at = datetime(2024, 6, 14, 18, 32, 6, 123000, tzinfo=UTC)
    envelope = Envelope.wrap(
        example,
        producer="tests",
        correlation_id="4bf92f3577b34da6a3ce929d0e0e4736",
        event_id=event_id,
        occurred_at=occurred_at,
    )
    wire = envelope.to_bytes()

    raw = RawEnvelope.model_validate_json(wire)
    assert raw.type == example.event_type
    assert raw.schema_version == example.schema_version
    assert raw.event_id == event_id
    assert raw.occurred_at == occurred_at
    assert raw.partition_key == example.partition_key
    assert raw.headers() == {
        "event-type": example.event_type,
        "event-id": str(event_id),
        "schema-version": str(example.schema_version),
        "correlation-id": "4bf92f3577b34da6a3ce929d0e0e4736",
        # W3C trace context: the flow's trace id, the event as the parent span.
        "traceparent": f"00-4bf92f3577b34da6a3ce929d0e0e4736-{event_id.hex[:16]}-01",
    }
    event_cls = EVENTS_BY_TYPE[raw.type]
    typed = event_cls.model_validate(raw.data)
    assert typed == example
    assert type(typed) is type(example)
    assert Envelope[event_cls].model_validate_json(wire) == envelope  # type: ignore[valid-type]


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.event_type for e in EXAMPLES])
def test_to_bytes_is_the_json_dump_encoded(example: Event) -> None:
    # to_bytes takes the serializer's bytes directly; they must be model_dump_json's.
    envelope = Envelope.wrap(example, producer="tests", correlation_id="flow-ü-✓")
    assert envelope.to_bytes() == envelope.model_dump_json().encode()


def test_wrap_gives_a_new_flow_fresh_ids() -> None:
    example = EXAMPLES[0]
    first = Envelope.wrap(example, producer="tests")
    second = Envelope.wrap(example, producer="tests")
    assert first.event_id != second.event_id
    assert first.correlation_id != second.correlation_id
    assert first.occurred_at.tzinfo is not None


def test_commission_examples_sum_to_the_whole() -> None:
    accrued = EXAMPLE_BY_TYPE["commission.accrued"]
    reversed_ = EXAMPLE_BY_TYPE["commission.reversed"]
    data = accrued.model_dump()
    parts = ("seller_proceeds", "creator_commission", "platform_fee")
    assert sum(data[p]["amount_minor"] for p in parts) == data["gross"]["amount_minor"]
    data = reversed_.model_dump()
    parts = ("seller_proceeds_reversed", "creator_commission_reversed", "platform_fee_reversed")
    assert sum(data[p]["amount_minor"] for p in parts) == data["refund_amount"]["amount_minor"]


# --- examples validate against the committed schemas ------------------------------------


def test_example_messages_are_valid_under_their_committed_schemas() -> None:
    """Needs the `jsonschema` package (not a dependency of the package yet)."""
    jsonschema = pytest.importorskip("jsonschema")
    for example in EXAMPLES:
        path = SCHEMA_DIR / schema_file_name(type(example))
        schema = json.loads(path.read_text(encoding="utf-8"))
        message = json.loads(Envelope.wrap(example, producer="tests").to_bytes())
        jsonschema.Draft202012Validator(schema).validate(message)
