"""Live's entities. Sales amounts are exact integers per currency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from vitrine_schemas.events import ProductStatus
from vitrine_schemas.money import Money


class SessionStatus(StrEnum):
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    shop_id: str
    title: str
    price: Money
    status: ProductStatus
    version: int


@dataclass(frozen=True, slots=True)
class Pin:
    product_id: str
    pinned_at: datetime
    product: Product | None  # None only if the catalog projection lost the product


@dataclass(frozen=True, slots=True)
class Sales:
    """Sales of one session in one currency."""

    currency: str
    orders: int
    gross: Money
    refunded: Money

    @property
    def net(self) -> Money:
        return self.gross - self.refunded


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    creator_id: str
    title: str
    status: SessionStatus
    started_at: datetime
    ended_at: datetime | None
    pins: tuple[Pin, ...] = ()
    sales: tuple[Sales, ...] = ()

    @property
    def is_live(self) -> bool:
        return self.status is SessionStatus.LIVE

    def is_pinned(self, product_id: str) -> bool:
        return any(pin.product_id == product_id for pin in self.pins)
