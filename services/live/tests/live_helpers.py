"""Helpers shared by live's tests: event builders, message framing, the API client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from vitrine_live.api.routes import build_router
from vitrine_live.usecases import LiveDeps
from vitrine_runtime import tracing
from vitrine_runtime.consumer import IncomingMessage, Outcome
from vitrine_runtime.http import install_common_routes
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderLine,
    OrderPlaced,
    OrderRefunded,
    ProductStatus,
    ProductUpserted,
    ShopKind,
)
from vitrine_schemas.money import Money

Deliver = Callable[..., Awaitable[Outcome]]
T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)


def envelope_of(event: Event, producer: str = "test") -> Envelope[Event]:
    return Envelope.wrap(event, producer=producer, correlation_id=tracing.current_correlation_id())


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


def order_placed(
    order_id: str, session_id: str | None, total_minor: int, currency: str = "EUR"
) -> OrderPlaced:
    price = Money(amount_minor=total_minor, currency=currency)
    attribution = (
        Attribution(source=AttributionSource.LIVE, creator_id="host", live_session_id=session_id)
        if session_id
        else Attribution(source=AttributionSource.NONE)
    )
    return OrderPlaced(
        order_id=order_id,
        buyer_id="buyer",
        shop_id="shop-1",
        seller_id="seller-1",
        shop_kind=ShopKind.THIRD_PARTY,
        lines=[
            OrderLine(product_id="p1", title="P", quantity=1, unit_price=price, commission_bps=1000)
        ],
        total=price,
        platform_fee_bps=500,
        attribution=attribution,
        placed_at=T0,
    )


def order_refunded(
    order_id: str, amount: int, refunded_total: int, order_total: int, currency: str = "EUR"
) -> OrderRefunded:
    def money(n: int) -> Money:
        return Money(amount_minor=n, currency=currency)

    return OrderRefunded(
        order_id=order_id,
        refund_id=f"r-{order_id}-{refunded_total}",
        amount=money(amount),
        refunded_total=money(refunded_total),
        order_total=money(order_total),
        refunded_at=T0,
    )


@asynccontextmanager
async def api_client(deps: LiveDeps) -> AsyncIterator[httpx.AsyncClient]:
    """The live API with the runtime's error mapping, on a bare database: no broker."""

    async def ready() -> dict[str, bool]:
        return {"started": True}

    app = FastAPI()
    install_common_routes(app, ready)
    app.include_router(build_router(deps))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://live") as http:
        yield http
