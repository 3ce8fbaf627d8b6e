"""Builders of the events the commission tests feed in (named apart from other services')."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from vitrine_commission.domain import AttributionPolicy
from vitrine_commission.handlers import CommissionHandlers
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

NOW = datetime(2025, 1, 1, tzinfo=UTC)
E = TypeVar("E", bound=Event)


def line(
    unit_minor: int, quantity: int = 1, commission_bps: int = 1000, currency: str = "EUR"
) -> OrderLine:
    return OrderLine(
        product_id=f"p-{unit_minor}-{quantity}",
        title="thing",
        quantity=quantity,
        unit_price=Money(amount_minor=unit_minor, currency=currency),
        commission_bps=commission_bps,
    )


def order_placed(
    order_id: str = "o-1",
    lines: list[OrderLine] | None = None,
    *,
    platform_fee_bps: int = 500,
    creator_id: str | None = "creator-1",
    source: AttributionSource = AttributionSource.CREATOR_TAGGED,
    shop_kind: ShopKind = ShopKind.THIRD_PARTY,
    seller_id: str = "seller-1",
) -> OrderPlaced:
    lines = lines or [line(1000)]
    currency = lines[0].unit_price.currency
    total = sum(item.unit_price.amount_minor * item.quantity for item in lines)
    return OrderPlaced(
        order_id=order_id,
        buyer_id="buyer-1",
        shop_id="shop-1",
        seller_id=seller_id,
        shop_kind=shop_kind,
        lines=lines,
        total=Money(amount_minor=total, currency=currency),
        platform_fee_bps=platform_fee_bps,
        attribution=Attribution(
            source=source, creator_id=creator_id, video_id="v-1" if creator_id else None
        ),
        placed_at=NOW,
    )


def order_refunded(
    order: OrderPlaced, refund_id: str, amount: int, refunded_total: int
) -> OrderRefunded:
    currency = order.total.currency
    return OrderRefunded(
        order_id=order.order_id,
        refund_id=refund_id,
        amount=Money(amount_minor=amount, currency=currency),
        refunded_total=Money(amount_minor=refunded_total, currency=currency),
        order_total=order.total,
        refunded_at=NOW,
    )


def wrap(data: E) -> Envelope[E]:
    return Envelope.wrap(data, producer="test")


def handlers(*, commission_on_auto_identified: bool = True) -> CommissionHandlers:
    return CommissionHandlers(
        lambda data: Envelope.wrap(data, producer="commission"),
        AttributionPolicy(commission_on_auto_identified=commission_on_auto_identified),
    )
