"""Checkout's entities. Amounts are `Money` (integer minor units), rates basis points."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from vitrine_schemas.events import Attribution, AttributionSource, ProductStatus, ShopKind
from vitrine_schemas.money import Money


@dataclass(frozen=True, slots=True)
class Product:
    """Checkout's view of a catalog product, with the units still available to sell."""

    product_id: str
    shop_id: str
    seller_id: str
    shop_kind: ShopKind
    title: str
    unit_price: Money
    commission_bps: int
    status: ProductStatus
    version: int
    available: int
    stock_version: int


class SessionStatus(StrEnum):
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: str
    creator_id: str
    status: SessionStatus
    pinned_product_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class LineRequest:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class AttributionRequest:
    source: AttributionSource
    creator_id: str | None = None
    video_id: str | None = None
    live_session_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    buyer_id: str
    lines: tuple[LineRequest, ...]
    attribution: AttributionRequest


@dataclass(frozen=True, slots=True)
class OrderLine:
    product_id: str
    title: str
    quantity: int
    unit_price: Money
    commission_bps: int  # the seller's rate when the order was placed, never re-read

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    order_id: str
    amount: Money
    refunded_total: Money  # cumulative, this refund included
    reason: str
    refunded_at: datetime


class OrderStatus(StrEnum):
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    buyer_id: str
    shop_id: str
    seller_id: str
    shop_kind: ShopKind
    lines: tuple[OrderLine, ...]
    total: Money
    platform_fee_bps: int  # frozen at order time
    attribution: Attribution
    placed_at: datetime
    refunded: Money
    refunds: tuple[Refund, ...] = field(default=())

    @property
    def refundable(self) -> Money:
        return self.total - self.refunded

    @property
    def status(self) -> OrderStatus:
        if self.refunded.amount_minor == 0:
            return OrderStatus.PAID
        if self.refunded == self.total:
            return OrderStatus.REFUNDED
        return OrderStatus.PARTIALLY_REFUNDED
