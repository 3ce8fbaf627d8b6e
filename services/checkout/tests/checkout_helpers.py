"""Helpers shared by checkout's tests: event builders and message framing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from vitrine_checkout.api.routes import build_router
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime import tracing
from vitrine_runtime.consumer import IncomingMessage, Outcome
from vitrine_runtime.http import install_common_routes
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import ProductStatus, ProductUpserted, ShopKind
from vitrine_schemas.money import Money

Deliver = Callable[..., Awaitable[Outcome]]


def envelope_of(event: Event) -> Envelope[Event]:
    return Envelope.wrap(
        event, producer="checkout", correlation_id=tracing.current_correlation_id()
    )


def message_of(envelope: Envelope[Any]) -> IncomingMessage:
    return IncomingMessage(
        topic=envelope.data.topic,
        partition=0,
        offset=0,
        key=envelope.partition_key.encode(),
        value=envelope.to_bytes(),
        headers={k: v.encode() for k, v in envelope.headers().items()},
    )


def product_event(product_id: str = "p1", **overrides: Any) -> ProductUpserted:
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


@asynccontextmanager
async def api_client(deps: CheckoutDeps) -> AsyncIterator[httpx.AsyncClient]:
    """The checkout API with the runtime's error mapping, on a bare database: no broker."""

    async def ready() -> dict[str, bool]:
        return {"started": True}

    app = FastAPI()
    install_common_routes(app, ready)
    app.include_router(build_router(deps))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://checkout") as http:
        yield http
