"""Checkout's pure rules: pricing, attribution, stock, refunds, request fingerprints."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vitrine_checkout.domain.errors import (
    AttributionError,
    MixedOrderError,
    OutOfStockError,
    ProductUnavailableError,
    RefundNotAllowedError,
    SessionNotLiveError,
)
from vitrine_checkout.domain.idempotency import request_fingerprint
from vitrine_checkout.domain.model import (
    AttributionRequest,
    LineRequest,
    LiveSession,
    Order,
    OrderRequest,
    OrderStatus,
    Product,
    SessionStatus,
)
from vitrine_checkout.domain.orders import (
    build_order,
    check_request,
    order_placed_event,
    reservation_plan,
)
from vitrine_checkout.domain.refunds import order_refunded_event, plan_refund
from vitrine_runtime.errors import InvalidRequestError, NotFoundError
from vitrine_schemas.events import AttributionSource, ProductStatus, ShopKind
from vitrine_schemas.money import Money

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NONE = AttributionRequest(AttributionSource.NONE)


def product(product_id: str, **overrides: object) -> Product:
    base = Product(
        product_id=product_id,
        shop_id="shop-1",
        seller_id="seller-1",
        shop_kind=ShopKind.THIRD_PARTY,
        title=f"P {product_id}",
        unit_price=Money(amount_minor=1000, currency="EUR"),
        commission_bps=1500,
        status=ProductStatus.ACTIVE,
        version=1,
        available=5,
        stock_version=1,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def request(*lines: tuple[str, int], attribution: AttributionRequest = NONE) -> OrderRequest:
    return OrderRequest(
        buyer_id="buyer-1",
        lines=tuple(LineRequest(p, q) for p, q in lines),
        attribution=attribution,
    )


def order(req: OrderRequest, products: list[Product], session: LiveSession | None = None) -> Order:
    return build_order(
        order_id="o1",
        request=req,
        products={p.product_id: p for p in products},
        session=session,
        platform_fee_bps=500,
        placed_at=NOW,
    )


def test_order_prices_lines_and_freezes_rates() -> None:
    placed = order(
        request(("b", 2), ("a", 1)),
        [
            product("a"),
            product("b", unit_price=Money(amount_minor=333, currency="EUR"), commission_bps=800),
        ],
    )
    assert placed.total == Money(amount_minor=1000 + 2 * 333, currency="EUR")
    assert [(line.product_id, line.commission_bps) for line in placed.lines] == [
        ("b", 800),
        ("a", 1500),
    ]
    assert placed.platform_fee_bps == 500
    assert placed.status is OrderStatus.PAID
    assert placed.refundable == placed.total
    assert reservation_plan(placed) == [("a", 1), ("b", 2)]
    event = order_placed_event(placed)
    assert event.total == placed.total
    assert event.attribution.source is AttributionSource.NONE
    assert event.seller_id == "seller-1"


@given(st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 10_000)), min_size=1, max_size=20))
def test_total_is_the_exact_sum_of_lines(lines: list[tuple[int, int]]) -> None:
    products = [
        product(f"p{i}", unit_price=Money(amount_minor=price, currency="JPY"), available=qty)
        for i, (price, qty) in enumerate(lines)
    ]
    placed = order(request(*((f"p{i}", q) for i, (_, q) in enumerate(lines))), products)
    assert placed.total == Money(amount_minor=sum(p * q for p, q in lines), currency="JPY")
    assert reservation_plan(placed) == sorted((f"p{i}", q) for i, (_, q) in enumerate(lines))


def test_missing_products_are_named() -> None:
    with pytest.raises(NotFoundError, match="x, y"):
        order(request(("a", 1), ("x", 1), ("y", 1)), [product("a")])


def test_archived_product_is_not_for_sale() -> None:
    with pytest.raises(ProductUnavailableError, match="a"):
        order(request(("a", 1)), [product("a", status=ProductStatus.ARCHIVED)])


def test_one_shop_per_order() -> None:
    with pytest.raises(MixedOrderError, match="shop-1, shop-2"):
        order(request(("a", 1), ("b", 1)), [product("a"), product("b", shop_id="shop-2")])


def test_one_currency_per_order() -> None:
    usd = Money(amount_minor=10, currency="USD")
    with pytest.raises(MixedOrderError, match="EUR, USD"):
        order(request(("a", 1), ("b", 1)), [product("a"), product("b", unit_price=usd)])


def test_duplicate_lines_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="two lines"):
        check_request(request(("a", 1), ("a", 2)))


def test_every_short_line_is_reported() -> None:
    with pytest.raises(OutOfStockError) as caught:
        order(
            request(("a", 6), ("b", 1), ("c", 3)),
            [product("a"), product("b"), product("c", available=2)],
        )
    assert "a (asked 6, 5 left)" in str(caught.value)
    assert "c (asked 3, 2 left)" in str(caught.value)
    assert caught.value.code == "out_of_stock"


@pytest.mark.parametrize(
    ("attribution", "message"),
    [
        (AttributionRequest(AttributionSource.NONE, creator_id="c1"), "remove creator_id"),
        (AttributionRequest(AttributionSource.AUTO_IDENTIFIED, creator_id="c1"), "video_id"),
        (AttributionRequest(AttributionSource.CREATOR_TAGGED, video_id="v1"), "creator_id"),
        (
            AttributionRequest(
                AttributionSource.CREATOR_TAGGED, creator_id="c", video_id="v", live_session_id="s"
            ),
            "takes no live_session_id",
        ),
        (AttributionRequest(AttributionSource.LIVE), "needs live_session_id"),
        (
            AttributionRequest(AttributionSource.LIVE, live_session_id="s", video_id="v"),
            "takes no video_id",
        ),
    ],
)
def test_attribution_shape(attribution: AttributionRequest, message: str) -> None:
    with pytest.raises(AttributionError, match=message):
        check_request(request(("a", 1), attribution=attribution))


def test_video_attribution_credits_the_given_creator() -> None:
    attribution = AttributionRequest(
        AttributionSource.AUTO_IDENTIFIED, creator_id="c1", video_id="v1"
    )
    placed = order(request(("a", 1), attribution=attribution), [product("a")])
    assert placed.attribution.creator_id == "c1"
    assert placed.attribution.video_id == "v1"
    assert placed.attribution.live_session_id is None


LIVE = AttributionRequest(AttributionSource.LIVE, live_session_id="s1")
SESSION = LiveSession("s1", "host", SessionStatus.LIVE)


def test_live_attribution_takes_the_creator_from_the_session() -> None:
    placed = order(request(("a", 1), attribution=LIVE), [product("a")], SESSION)
    assert placed.attribution.creator_id == "host"
    assert placed.attribution.live_session_id == "s1"
    same = replace(LIVE, creator_id="host")
    assert order(request(("a", 1), attribution=same), [product("a")], SESSION).attribution == (
        placed.attribution
    )


def test_live_attribution_needs_a_live_session_of_that_creator() -> None:
    with pytest.raises(NotFoundError, match="s1"):
        order(request(("a", 1), attribution=LIVE), [product("a")], None)
    with pytest.raises(SessionNotLiveError):
        order(
            request(("a", 1), attribution=LIVE),
            [product("a")],
            replace(SESSION, status=SessionStatus.ENDED),
        )
    with pytest.raises(AttributionError, match="not the host"):
        order(
            request(("a", 1), attribution=replace(LIVE, creator_id="other")),
            [product("a")],
            SESSION,
        )


# --- refunds --------------------------------------------------------------------------


def placed_order(total_minor: int = 1000) -> Order:
    price = Money(amount_minor=total_minor, currency="EUR")
    return order(request(("a", 1)), [product("a", unit_price=price)])


def refund_of(o: Order, amount: int | None) -> Order:
    refund = plan_refund(o, refund_id="r", amount_minor=amount, reason="", refunded_at=NOW)
    return replace(o, refunded=refund.refunded_total, refunds=(*o.refunds, refund))


def test_refund_defaults_to_all_that_is_left() -> None:
    partly = refund_of(placed_order(), 300)
    assert partly.status is OrderStatus.PARTIALLY_REFUNDED
    rest = plan_refund(partly, refund_id="r2", amount_minor=None, reason="x", refunded_at=NOW)
    assert rest.amount == Money(amount_minor=700, currency="EUR")
    assert rest.refunded_total == Money(amount_minor=1000, currency="EUR")
    event = order_refunded_event(partly, rest)
    assert event.refunded_total.amount_minor == 1000
    assert event.order_total.amount_minor == 1000
    assert refund_of(partly, None).status is OrderStatus.REFUNDED


def test_refund_limits() -> None:
    o = placed_order()
    with pytest.raises(RefundNotAllowedError, match=r"10\.01 EUR exceeds the 10\.00 EUR"):
        plan_refund(o, refund_id="r", amount_minor=1001, reason="", refunded_at=NOW)
    with pytest.raises(InvalidRequestError):
        plan_refund(o, refund_id="r", amount_minor=0, reason="", refunded_at=NOW)
    done = refund_of(o, None)
    with pytest.raises(RefundNotAllowedError, match="already fully refunded"):
        plan_refund(done, refund_id="r", amount_minor=None, reason="", refunded_at=NOW)


@given(st.integers(1, 10**12), st.lists(st.integers(-5, 10**12), max_size=15))
def test_refunds_never_exceed_the_total(total: int, asks: list[int]) -> None:
    o = placed_order(total)
    for ask in asks:
        try:
            o = refund_of(o, ask)
        except (RefundNotAllowedError, InvalidRequestError):
            assert ask <= 0 or ask > o.refundable.amount_minor
        assert 0 <= o.refunded.amount_minor <= total
        assert o.refunded.amount_minor == sum(r.amount.amount_minor for r in o.refunds)
        assert o.refunds == () or o.refunds[-1].refunded_total == o.refunded


# --- idempotency ----------------------------------------------------------------------


def test_fingerprint_ignores_key_order_but_not_content() -> None:
    a = request_fingerprint("op", {"x": 1, "y": [1, 2], "z": {"a": None, "b": "s"}})
    b = request_fingerprint("op", {"z": {"b": "s", "a": None}, "y": [1, 2], "x": 1})
    assert a == b
    assert a != request_fingerprint("op", {"x": 2, "y": [1, 2], "z": {"a": None, "b": "s"}})
    assert a != request_fingerprint("other", {"x": 1, "y": [1, 2], "z": {"a": None, "b": "s"}})
