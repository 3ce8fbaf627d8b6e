"""Checkout test fixtures: a migrated schema, the HTTP API without a broker, and a consumer
that feeds events through the runtime's real inbox path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
from checkout_helpers import Deliver, api_client, envelope_of, product_event

from vitrine_checkout.app import MIGRATIONS
from vitrine_checkout.handlers import register_handlers
from vitrine_checkout.settings import CheckoutSettings
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime.consumer import EventConsumer
from vitrine_runtime.db import Database
from vitrine_runtime.testing import DeadLetter, deliverer, recording_consumer
from vitrine_schemas.events import ProductUpserted


@pytest.fixture
async def db(database: object) -> Database:
    db = cast(Database, database)
    await db.migrate(MIGRATIONS)
    return db


@pytest.fixture(params=[64, 1], ids=["group-commit", "one-by-one"])
def settings(request: pytest.FixtureRequest) -> CheckoutSettings:
    """Every checkout test runs with orders grouped into shared transactions (the default)
    and with each order in its own."""
    return CheckoutSettings(platform_fee_bps=500, order_group_commit_max=request.param)


@pytest.fixture
def deps(db: Database, settings: CheckoutSettings) -> CheckoutDeps:
    return CheckoutDeps(database=lambda: db, settings=settings, envelope=envelope_of)


@pytest.fixture
async def client(deps: CheckoutDeps) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(deps) as http:
        yield http


@pytest.fixture
def dead_letters() -> list[DeadLetter]:
    return []


@pytest.fixture
def consumer(db: Database, dead_letters: list[DeadLetter]) -> EventConsumer:
    return recording_consumer("checkout", register_handlers, db, dead_letters)


@pytest.fixture
def deliver(consumer: EventConsumer) -> Deliver:
    """Feed one event (or a given envelope, to redeliver it) through the consumer."""
    return deliverer(consumer)


@pytest.fixture
def put_product(deliver: Deliver) -> Callable[..., Awaitable[ProductUpserted]]:
    async def put(product_id: str = "p1", **overrides: Any) -> ProductUpserted:
        event = product_event(product_id, **overrides)
        await deliver(event)
        return event

    return put
