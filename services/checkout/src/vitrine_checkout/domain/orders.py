"""Placing an order: which requests are valid, the price, the attribution, the stock plan.

Checks run in the order a caller can act on them: the request's own shape first (no data
needed), then products and session against checkout's projections, then stock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from vitrine_checkout.domain.errors import (
    AttributionError,
    MixedOrderError,
    OutOfStockError,
    ProductUnavailableError,
    SessionNotLiveError,
)
from vitrine_checkout.domain.model import (
    AttributionRequest,
    LiveSession,
    Order,
    OrderLine,
    OrderRequest,
    Product,
    SessionStatus,
)
from vitrine_runtime.errors import InvalidRequestError, NotFoundError
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    OrderPlaced,
    ProductStatus,
)
from vitrine_schemas.events import OrderLine as OrderLineContract
from vitrine_schemas.money import Money


def check_request(request: OrderRequest) -> None:
    """Reject what is wrong with the request itself, before any data is read."""
    if not request.lines:
        raise InvalidRequestError("an order needs at least one line")
    seen: set[str] = set()
    for line in request.lines:
        if line.quantity < 1:
            raise InvalidRequestError(f"quantity of {line.product_id} must be at least 1")
        if line.product_id in seen:
            # One line per product keeps the frozen price and the reservation unambiguous.
            raise InvalidRequestError(
                f"product {line.product_id} appears on two lines; give one line per product"
                " with the total quantity"
            )
        seen.add(line.product_id)
    check_attribution_shape(request.attribution)


def check_attribution_shape(attribution: AttributionRequest) -> None:
    """Which fields each attribution source needs, and which it must not carry."""
    source = attribution.source
    if source is AttributionSource.NONE:
        given = [
            name
            for name in ("creator_id", "video_id", "live_session_id")
            if getattr(attribution, name) is not None
        ]
        if given:
            raise AttributionError(
                f"attribution source 'none' credits no creator; remove {', '.join(given)}"
            )
    elif source is AttributionSource.LIVE:
        if attribution.live_session_id is None:
            raise AttributionError("attribution source 'live' needs live_session_id")
        if attribution.video_id is not None:
            raise AttributionError("attribution source 'live' takes no video_id")
    else:
        missing = [
            name for name in ("video_id", "creator_id") if getattr(attribution, name) is None
        ]
        if missing:
            raise AttributionError(
                f"attribution source '{source.value}' needs {' and '.join(missing)}"
            )
        if attribution.live_session_id is not None:
            raise AttributionError(f"attribution source '{source.value}' takes no live_session_id")


def resolve_attribution(
    attribution: AttributionRequest, session: LiveSession | None
) -> Attribution:
    """The attribution frozen on the order; a live sale is credited to the session's creator.

    `session` is checkout's projection of the named live session (None if unknown).
    """
    check_attribution_shape(attribution)
    if attribution.source is AttributionSource.LIVE:
        session_id = attribution.live_session_id
        if session is None or session.session_id != session_id:
            raise NotFoundError(f"live session {session_id} not found")
        if session.status is not SessionStatus.LIVE:
            raise SessionNotLiveError(f"live session {session_id} has ended")
        if attribution.creator_id is not None and attribution.creator_id != session.creator_id:
            raise AttributionError(
                f"creator {attribution.creator_id} is not the host of live session"
                f" {session_id}; omit creator_id or give {session.creator_id}"
            )
        return Attribution(
            source=AttributionSource.LIVE,
            creator_id=session.creator_id,
            live_session_id=session_id,
        )
    return Attribution(
        source=attribution.source,
        creator_id=attribution.creator_id,
        video_id=attribution.video_id,
    )


def build_order(
    *,
    order_id: str,
    request: OrderRequest,
    products: Mapping[str, Product],
    session: LiveSession | None,
    platform_fee_bps: int,
    placed_at: datetime,
) -> Order:
    """Price and attribute an order from the current products; raise if it cannot be placed.

    Stock is checked here against `available` as read under lock, so every short line is
    reported at once; the reservation itself is still guarded in SQL.
    """
    check_request(request)
    missing = [line.product_id for line in request.lines if line.product_id not in products]
    if missing:
        raise NotFoundError(f"product not found: {', '.join(missing)}")
    chosen = [products[line.product_id] for line in request.lines]
    inactive = [p.product_id for p in chosen if p.status is not ProductStatus.ACTIVE]
    if inactive:
        raise ProductUnavailableError(f"product not for sale: {', '.join(inactive)}")
    shops = sorted({p.shop_id for p in chosen})
    if len(shops) > 1:
        raise MixedOrderError(
            f"an order holds one shop's products; these lines span shops {', '.join(shops)}"
        )
    currencies = sorted({p.unit_price.currency for p in chosen})
    if len(currencies) > 1:
        raise MixedOrderError(
            f"an order is paid in one currency; these lines are priced in {', '.join(currencies)}"
        )
    attribution = resolve_attribution(request.attribution, session)
    short = [
        f"{line.product_id} (asked {line.quantity}, {products[line.product_id].available} left)"
        for line in request.lines
        if products[line.product_id].available < line.quantity
    ]
    if short:
        raise OutOfStockError(f"out of stock: {'; '.join(short)}")

    lines = tuple(
        OrderLine(
            product_id=p.product_id,
            title=p.title,
            quantity=line.quantity,
            unit_price=p.unit_price,
            commission_bps=p.commission_bps,
        )
        for line, p in zip(request.lines, chosen, strict=True)
    )
    total = Money.zero(currencies[0])
    for order_line in lines:
        total = total + order_line.line_total
    first = chosen[0]
    return Order(
        order_id=order_id,
        buyer_id=request.buyer_id,
        shop_id=first.shop_id,
        seller_id=first.seller_id,
        shop_kind=first.shop_kind,
        lines=lines,
        total=total,
        platform_fee_bps=platform_fee_bps,
        attribution=attribution,
        placed_at=placed_at,
        refunded=Money.zero(total.currency),
    )


def reservation_plan(order: Order) -> list[tuple[str, int]]:
    """(product_id, quantity) in product_id order: every transaction locks rows in the same
    order, so two orders over the same products queue instead of deadlocking."""
    return sorted((line.product_id, line.quantity) for line in order.lines)


def order_placed_event(order: Order) -> OrderPlaced:
    return OrderPlaced(
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        shop_id=order.shop_id,
        seller_id=order.seller_id,
        shop_kind=order.shop_kind,
        lines=[
            OrderLineContract(
                product_id=line.product_id,
                title=line.title,
                quantity=line.quantity,
                unit_price=line.unit_price,
                commission_bps=line.commission_bps,
            )
            for line in order.lines
        ],
        total=order.total,
        platform_fee_bps=order.platform_fee_bps,
        attribution=order.attribution,
        placed_at=order.placed_at,
    )
