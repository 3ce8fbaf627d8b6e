"""Checkout test fixtures: a migrated schema, the HTTP API without a broker, and a consumer
that feeds events through the runtime's real inbox path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
from checkout_helpers import Deliver, api_client, envelope_of, message_of, product_event

from vitrine_checkout.app import MIGRATIONS
from vitrine_checkout.handlers import register_handlers
from vitrine_checkout.settings import CheckoutSettings
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime.consumer import EventConsumer, Outcome
from vitrine_runtime.db import Database
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import ProductUpserted


@pytest.fixture
async def db(database: object) -> Database:
    db = cast(Database, database)
    await db.migrate(MIGRATIONS)
    return db


@pytest.fixture
def settings() -> CheckoutSettings:
    return CheckoutSettings(platform_fee_bps=500)


@pytest.fixture
def deps(db: Database, settings: CheckoutSettings) -> CheckoutDeps:
    return CheckoutDeps(database=lambda: db, settings=settings, envelope=envelope_of)


@pytest.fixture
async def client(deps: CheckoutDeps) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(deps) as http:
        yield http


@pytest.fixture
def dead_letters() -> list[tuple[str, dict[str, str]]]:
    return []


@pytest.fixture
def consumer(db: Database, dead_letters: list[tuple[str, dict[str, str]]]) -> EventConsumer:
    async def publish(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
        dead_letters.append((topic, headers))

    consumer = EventConsumer("checkout", max_attempts=1, retry_backoff_s=0.001)
    register_handlers(consumer)
    consumer.bind(db, publish)
    return consumer


@pytest.fixture
def deliver(consumer: EventConsumer) -> Deliver:
    """Feed one event (or a given envelope, to redeliver it) through the consumer."""

    async def deliver(item: Event | Envelope[Any]) -> Outcome:
        envelope = item if isinstance(item, Envelope) else envelope_of(item)
        return await consumer.handle(message_of(envelope))

    return deliver


@pytest.fixture
def put_product(deliver: Deliver) -> Callable[..., Awaitable[ProductUpserted]]:
    async def put(product_id: str = "p1", **overrides: Any) -> ProductUpserted:
        event = product_event(product_id, **overrides)
        await deliver(event)
        return event

    return put
