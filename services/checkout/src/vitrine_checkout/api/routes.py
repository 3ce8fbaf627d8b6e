"""Checkout's HTTP API: place orders, read them, refund them, read the checkout view of a
product. Domain errors become 404/409/422 through the runtime's error mapping."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from vitrine_checkout import usecases
from vitrine_checkout.domain.model import (
    AttributionRequest,
    LineRequest,
    Order,
    OrderRequest,
    OrderStatus,
    Product,
    Refund,
)
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime.errors import InvalidRequestError
from vitrine_schemas.events import Attribution, AttributionSource, ProductStatus, ShopKind
from vitrine_schemas.money import Money

Id = Annotated[str, Field(min_length=1, max_length=128)]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="client-chosen unique key; a retry with the same key and body returns"
        " the first result instead of acting twice",
    ),
]
REPLAYED_HEADER = "Idempotent-Replayed"
_MAX_KEY_LENGTH = 255

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "order, product or live session not found"},
    409: {"description": "out of stock, not for sale, session ended, key reused"},
    422: {"description": "invalid request (missing Idempotency-Key, mixed shops, ...)"},
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderLineIn(_In):
    product_id: Id
    quantity: int = Field(ge=1, le=10_000)


class AttributionIn(_In):
    source: AttributionSource
    creator_id: Id | None = None
    video_id: Id | None = None
    live_session_id: Id | None = None


class PlaceOrderIn(_In):
    buyer_id: Id
    lines: list[OrderLineIn] = Field(min_length=1, max_length=100)
    attribution: AttributionIn = Field(
        default_factory=lambda: AttributionIn(source=AttributionSource.NONE)
    )

    def to_domain(self) -> OrderRequest:
        a = self.attribution
        return OrderRequest(
            buyer_id=self.buyer_id,
            lines=tuple(LineRequest(line.product_id, line.quantity) for line in self.lines),
            attribution=AttributionRequest(
                source=a.source,
                creator_id=a.creator_id,
                video_id=a.video_id,
                live_session_id=a.live_session_id,
            ),
        )


class RefundIn(_In):
    amount_minor: int | None = Field(
        None, gt=0, description="minor units to refund; omit to refund all that is left"
    )
    reason: str = Field("", max_length=500)


class OrderLineOut(BaseModel):
    product_id: str
    title: str
    quantity: int
    unit_price: Money
    line_total: Money
    commission_bps: int


class RefundOut(BaseModel):
    refund_id: str
    order_id: str
    amount: Money
    refunded_total: Money
    reason: str
    refunded_at: datetime

    @classmethod
    def of(cls, refund: Refund) -> RefundOut:
        return cls(
            refund_id=refund.refund_id,
            order_id=refund.order_id,
            amount=refund.amount,
            refunded_total=refund.refunded_total,
            reason=refund.reason,
            refunded_at=refund.refunded_at,
        )


class OrderOut(BaseModel):
    order_id: str
    status: OrderStatus
    buyer_id: str
    shop_id: str
    seller_id: str
    shop_kind: ShopKind
    lines: list[OrderLineOut]
    total: Money
    platform_fee_bps: int
    attribution: Attribution
    placed_at: datetime
    refunded_total: Money
    refundable: Money
    refunds: list[RefundOut]

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            order_id=order.order_id,
            status=order.status,
            buyer_id=order.buyer_id,
            shop_id=order.shop_id,
            seller_id=order.seller_id,
            shop_kind=order.shop_kind,
            lines=[
                OrderLineOut(
                    product_id=line.product_id,
                    title=line.title,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                    commission_bps=line.commission_bps,
                )
                for line in order.lines
            ],
            total=order.total,
            platform_fee_bps=order.platform_fee_bps,
            attribution=order.attribution,
            placed_at=order.placed_at,
            refunded_total=order.refunded,
            refundable=order.refundable,
            refunds=[RefundOut.of(r) for r in order.refunds],
        )


class RefundResultOut(BaseModel):
    refund: RefundOut
    order: OrderOut


class ProductOut(BaseModel):
    product_id: str
    shop_id: str
    seller_id: str
    shop_kind: ShopKind
    title: str
    unit_price: Money
    commission_bps: int
    status: ProductStatus
    available: int
    version: int
    stock_version: int

    @classmethod
    def of(cls, p: Product) -> ProductOut:
        return cls(
            product_id=p.product_id,
            shop_id=p.shop_id,
            seller_id=p.seller_id,
            shop_kind=p.shop_kind,
            title=p.title,
            unit_price=p.unit_price,
            commission_bps=p.commission_bps,
            status=p.status,
            available=p.available,
            version=p.version,
            stock_version=p.stock_version,
        )


def _require_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise InvalidRequestError(
            "the Idempotency-Key header is required: send a unique value (a UUID) per"
            " intended write, and the same value when you retry it"
        )
    if len(key) > _MAX_KEY_LENGTH:
        raise InvalidRequestError(f"Idempotency-Key is longer than {_MAX_KEY_LENGTH} characters")
    return key


def _mark(response: Response, replayed: bool) -> None:
    # 201 for the write that created the resource; 200 plus a header for a replay of it.
    if replayed:
        response.status_code = 200
        response.headers[REPLAYED_HEADER] = "true"


def _written(body: BaseModel, replayed: bool) -> Response:
    """The JSON of a model that is already valid: FastAPI would validate it again before
    serialising it, a cost paid on every order (the hot path of checkout)."""
    response = Response(body.model_dump_json(), status_code=201, media_type="application/json")
    _mark(response, replayed)
    return response


def build_router(deps: CheckoutDeps) -> APIRouter:
    router = APIRouter(tags=["checkout"])

    @router.post("/orders", status_code=201, response_model=OrderOut, responses=_ERRORS)
    async def place_order(
        body: PlaceOrderIn, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response:
        """Place a paid order (payment is out of scope): reserve stock, freeze prices,
        commission rates and the platform fee, emit `order.placed`.

        201 on creation; 200 with `Idempotent-Replayed: true` for a retry with the same key
        and body; 409 when the key was used for another body or stock is short."""
        key = _require_key(idempotency_key)
        outcome = await usecases.place_order(
            deps, body.to_domain(), key, body.model_dump(mode="json")
        )
        return _written(OrderOut.of(outcome.order), outcome.replayed)

    @router.get("/orders/{order_id}", responses=_ERRORS)
    async def get_order(order_id: str) -> OrderOut:
        return OrderOut.of(await usecases.get_order(deps, order_id))

    @router.post("/orders/{order_id}/refunds", status_code=201, responses=_ERRORS)
    async def refund_order(
        order_id: str,
        body: RefundIn,
        response: Response,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> RefundResultOut:
        """Refund part (`amount_minor`) or all that is left of an order; emits
        `order.refunded` with the cumulative refunded total."""
        key = _require_key(idempotency_key)
        outcome = await usecases.refund_order(
            deps,
            order_id,
            amount_minor=body.amount_minor,
            reason=body.reason,
            idempotency_key=key,
            fingerprint_of=body.model_dump(mode="json"),
        )
        _mark(response, outcome.replayed)
        assert outcome.refund is not None
        return RefundResultOut(
            refund=RefundOut.of(outcome.refund), order=OrderOut.of(outcome.order)
        )

    @router.get("/products/{product_id}", responses=_ERRORS)
    async def get_product(product_id: str) -> ProductOut:
        """The checkout view of a product, with the units still available."""
        return ProductOut.of(await usecases.get_product(deps, product_id))

    return router
