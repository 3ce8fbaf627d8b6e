"""Test helpers every service's tests share: framing events as the broker delivers them,
a consumer bound to a real database that records what it dead-letters, the HTTP face
without a broker, and a product event to start from. Not used by any service at run time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI

from vitrine_runtime import tracing
from vitrine_runtime.consumer import EventConsumer, IncomingMessage, Outcome
from vitrine_runtime.db import Database
from vitrine_runtime.http import install_common_routes
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import ProductStatus, ProductUpserted, ShopKind
from vitrine_schemas.money import Money

DeadLetter = tuple[str, dict[str, str]]  # topic, headers
Deliver = Callable[[Event | Envelope[Any]], Awaitable[Outcome]]


def envelope_of(event: Event, producer: str = "test") -> Envelope[Event]:
    return Envelope.wrap(event, producer=producer, correlation_id=tracing.current_correlation_id())


def message_of(envelope: Envelope[Any], offset: int = 0) -> IncomingMessage:
    """The envelope as a consumer receives it from the broker: bytes, key and headers."""
    return IncomingMessage(
        topic=envelope.data.topic,
        partition=0,
        offset=offset,
        key=envelope.partition_key.encode(),
        value=envelope.to_bytes(),
        headers={k: v.encode() for k, v in envelope.headers().items()},
    )


def recording_consumer(
    service: str,
    register_handlers: Callable[[EventConsumer], None],
    db: Database,
    dead_letters: list[DeadLetter],
) -> EventConsumer:
    """A service's consumer on a real database, one try per event, whose dead letters are
    appended to `dead_letters` instead of being published."""

    async def publish(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
        dead_letters.append((topic, headers))

    consumer = EventConsumer(service, max_attempts=1, retry_backoff_s=0.001)
    register_handlers(consumer)
    consumer.bind(db, publish)
    return consumer


def deliverer(consumer: EventConsumer) -> Deliver:
    """Feed one event (or a given envelope, to redeliver it) through the consumer."""

    async def deliver(item: Event | Envelope[Any]) -> Outcome:
        envelope = item if isinstance(item, Envelope) else envelope_of(item)
        return await consumer.handle(message_of(envelope))

    return deliver


def api_app(router: APIRouter) -> FastAPI:
    """A service's routes with the runtime's error mapping and health routes; no broker."""

    async def ready() -> dict[str, bool]:
        return {"started": True}

    app = FastAPI()
    install_common_routes(app, ready)
    app.include_router(router)
    return app


def product_upserted(product_id: str = "p1", **overrides: Any) -> ProductUpserted:
    """An active third-party product at 19.99 EUR, 10 in stock, 10 % commission."""
    fields: dict[str, Any] = {
        "product_id": product_id,
        "shop_id": "shop-1",
        "seller_id": "seller-1",
        "shop_kind": ShopKind.THIRD_PARTY,
        "title": f"Product {product_id}",
        "price": Money(amount_minor=1999, currency="EUR"),
        "stock": 10,
        "stock_version": 1,
        "commission_bps": 1000,
        "status": ProductStatus.ACTIVE,
        "version": 1,
        "image_count": 1,
    }
    fields.update(overrides)
    return ProductUpserted(**fields)


def run_in_fresh_python(script: str, **environ: str) -> str:
    """Run ``script`` in a new interpreter with ``environ`` added, and return its output.

    For what a library reads once per process, at its first use (oneDNN's
    ``ONEDNN_MAX_CPU_ISA``): set in the test's own process it would apply to every later
    test there. Fails with the child's stderr if it exits non-zero (a crash included)."""
    done = subprocess.run(  # noqa: S603 (the calling test's own script)
        [sys.executable, "-c", script],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout
