"""Rates are frozen on the order: a later change of the product's commission rate
(catalog PATCH -> catalog.product_upserted -> checkout's projection) never touches the
accrual or the reversals of an order placed before it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from vitrine_schemas.money import Money
from vitrine_stack.client import PlatformClient, Seller, eventually

pytestmark = pytest.mark.e2e


async def postings(client: PlatformClient, order_id: str, count: int) -> list[dict[str, Any]]:
    async def booked() -> list[dict[str, Any]] | None:
        body = await client.call(
            "commission", "GET", "/transactions", params={"order_id": order_id}
        )
        found: list[dict[str, Any]] = body["transactions"]
        return found if len(found) >= count else None

    return await eventually(booked, timeout_s=60, what=f"{count} postings of {order_id}")


async def buy(client: PlatformClient, product: dict[str, Any], creator: str) -> dict[str, Any]:
    order: dict[str, Any] = await client.call(
        "checkout",
        "POST",
        "/orders",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "buyer_id": "buyer-rates",
            "lines": [{"product_id": product["product_id"], "quantity": 3}],
            "attribution": {"source": "creator_tagged", "creator_id": creator, "video_id": "v"},
        },
    )
    return order


async def test_a_rate_change_never_touches_past_orders(
    client: PlatformClient, seller: Seller
) -> None:
    shop = await seller.shop()
    product = await seller.product(
        shop, price=Money(amount_minor=3333, currency="EUR"), commission_bps=1000, stock=20
    )
    await seller.sellable(product)
    creator = f"creator-{uuid.uuid4().hex[:6]}"
    before = await buy(client, product, creator)  # 9999 at 10 %
    [sale] = await postings(client, before["order_id"], 1)
    assert sale["creator_commission_minor"] == 999  # floor(9999 * 1000 / 10000)

    # The seller raises the rate to 30 %; checkout's copy of the product follows.
    await client.call(
        "catalog", "PATCH", f"/products/{product['product_id']}", json={"commission_bps": 3000}
    )

    async def repriced() -> dict[str, Any] | None:
        view: dict[str, Any] = await client.call(
            "checkout", "GET", f"/products/{product['product_id']}"
        )
        return view if view["commission_bps"] == 3000 else None

    await eventually(repriced, what="checkout to see the new rate")
    after = await buy(client, product, creator)
    [new_sale] = await postings(client, after["order_id"], 1)
    assert new_sale["creator_commission_minor"] == 2999  # the new rate is in force

    # A partial refund of the old order claws back at its frozen 10 %, not at 30 %.
    await client.call(
        "checkout",
        "POST",
        f"/orders/{before['order_id']}/refunds",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount_minor": 3333},
    )
    [sale_again, reversal] = await postings(client, before["order_id"], 2)
    assert sale_again == sale  # the accrual itself never changes
    assert reversal["creator_commission_minor"] == 333  # floor(999 * 3333 / 9999)
    order = await client.call("checkout", "GET", f"/orders/{before['order_id']}")
    assert order["lines"][0]["commission_bps"] == 1000
    await client.call(
        "checkout",
        "POST",
        f"/orders/{before['order_id']}/refunds",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={},
    )
    await postings(client, before["order_id"], 3)
    accounts = await client.call(
        "commission", "GET", "/accounts", params={"owner_type": "creator", "owner_id": creator}
    )
    # Only the second order's 30 % is left: the first was reversed exactly, at 10 %.
    assert [a["balance_minor"] for a in accounts["accounts"]] == [-2999]
