"""Helpers shared by live's tests: event builders, message framing, the API client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx

from vitrine_live.api.routes import build_router
from vitrine_live.usecases import LiveDeps
from vitrine_runtime import testing
from vitrine_runtime.testing import Deliver, api_app, message_of
from vitrine_runtime.testing import product_upserted as product_event
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderLine,
    OrderPlaced,
    OrderRefunded,
    ShopKind,
)
from vitrine_schemas.money import Money

__all__ = ["Deliver", "api_client", "envelope_of", "message_of", "product_event"]


def envelope_of(event: Event) -> Envelope[Event]:
    return testing.envelope_of(event, producer="test")


T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)


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

    transport = httpx.ASGITransport(app=api_app(build_router(deps)))
    async with httpx.AsyncClient(transport=transport, base_url="http://live") as http:
        yield http
