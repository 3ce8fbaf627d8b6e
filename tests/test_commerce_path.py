"""Orders, refunds and the ledger, through checkout HTTP, the broker and commission."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from vitrine_schemas.money import Money, split
from vitrine_stack.client import PlatformClient, Seller, eventually

pytestmark = pytest.mark.e2e

PLATFORM_FEE_BPS = 500  # checkout's default, frozen on each order


def order_body(product: dict[str, Any], quantity: int, **attribution: Any) -> dict[str, Any]:
    return {
        "buyer_id": f"buyer-{uuid.uuid4().hex[:6]}",
        "lines": [{"product_id": product["product_id"], "quantity": quantity}],
        "attribution": attribution or {"source": "none"},
    }


async def place(client: PlatformClient, body: dict[str, Any], key: str | None = None) -> Any:
    return await client.call(
        "checkout",
        "POST",
        "/orders",
        json=body,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


async def balance(client: PlatformClient, owner_type: str, owner_id: str, currency: str) -> int:
    accounts = await client.call(
        "commission", "GET", "/accounts", params={"owner_type": owner_type, "owner_id": owner_id}
    )
    return (
        sum(a["balance_minor"] for a in accounts["accounts"] if a["currency"] == currency)
        if isinstance(accounts, dict)
        else sum(a["balance_minor"] for a in accounts if a["currency"] == currency)
    )


async def posted(client: PlatformClient, order_id: str, count: int) -> list[dict[str, Any]]:
    async def transactions() -> list[dict[str, Any]] | None:
        body = await client.call(
            "commission", "GET", "/transactions", params={"order_id": order_id}
        )
        items = body["transactions"] if isinstance(body, dict) else body
        return items if len(items) >= count else None

    return await eventually(transactions, timeout_s=60, what=f"ledger postings of {order_id}")


async def test_a_sale_and_its_refunds_are_split_exactly_in_the_ledger(
    client: PlatformClient,
    seller: Seller,
) -> None:
    shop = await seller.shop()
    product = await seller.product(
        shop, price=Money(amount_minor=1999, currency="EUR"), commission_bps=1250
    )
    await seller.sellable(product)
    creator = f"creator-{uuid.uuid4().hex[:6]}"
    order = await place(
        client,
        order_body(product, 3, source="creator_tagged", creator_id=creator, video_id="vid-x"),
    )
    gross = 3 * 1999
    assert order["total"] == {"amount_minor": gross, "currency": "EUR"}
    await posted(client, order["order_id"], 1)

    parts = split(gross, {"creator": 1250, "platform": PLATFORM_FEE_BPS}, remainder_to="seller")
    # Liabilities and revenue are credits: negative in the ledger's signed convention.
    assert await balance(client, "creator", creator, "EUR") == -parts["creator"]
    assert await balance(client, "seller", shop["seller_id"], "EUR") == -parts["seller"]

    for amount in (1, 1000):
        await client.call(
            "checkout",
            "POST",
            f"/orders/{order['order_id']}/refunds",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"amount_minor": amount},
        )
    await posted(client, order["order_id"], 3)
    await client.call(
        "checkout",
        "POST",
        f"/orders/{order['order_id']}/refunds",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={},
    )  # the rest
    await posted(client, order["order_id"], 4)
    assert await balance(client, "creator", creator, "EUR") == 0
    assert await balance(client, "seller", shop["seller_id"], "EUR") == 0

    trial = await client.call("commission", "GET", "/ledger/trial-balance")
    assert trial["balanced"] is True
    assert all(
        c["sum_minor"] == 0 and c["imbalanced_transactions"] == 0 for c in trial["currencies"]
    )


async def test_the_same_idempotency_key_gives_the_same_order_once(
    client: PlatformClient,
    seller: Seller,
) -> None:
    shop = await seller.shop()
    product = await seller.product(shop, price=Money(amount_minor=500, currency="JPY"), stock=5)
    await seller.sellable(product)
    body, key = order_body(product, 2), str(uuid.uuid4())
    first = await client["checkout"].post("/orders", json=body, headers={"Idempotency-Key": key})
    again = await client["checkout"].post("/orders", json=body, headers={"Idempotency-Key": key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["order_id"] == again.json()["order_id"]
    view = await client.call("checkout", "GET", f"/products/{product['product_id']}")
    assert view["available"] == 3  # reserved once

    changed = {**body, "lines": [{"product_id": product["product_id"], "quantity": 1}]}
    clash = await client["checkout"].post("/orders", json=changed, headers={"Idempotency-Key": key})
    assert clash.status_code == 409
    assert "Idempotency-Key" in clash.json()["message"]
    transactions = await posted(client, first.json()["order_id"], 1)
    await asyncio.sleep(1.0)  # a duplicate event would have been posted by now
    assert len(await posted(client, first.json()["order_id"], 1)) == len(transactions) == 1


async def test_two_buyers_for_the_last_unit_exactly_one_wins(
    client: PlatformClient,
    seller: Seller,
) -> None:
    shop = await seller.shop()
    product = await seller.product(shop, price=Money(amount_minor=9900, currency="USD"), stock=1)
    await seller.sellable(product)
    responses = await asyncio.gather(
        *(
            client["checkout"].post(
                "/orders",
                json=order_body(product, 1),
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert "stock" in loser.json()["message"].lower()
    view = await client.call("checkout", "GET", f"/products/{product['product_id']}")
    assert view["available"] == 0


async def test_a_live_sale_is_attributed_to_the_session_and_its_creator(
    client: PlatformClient,
    seller: Seller,
) -> None:
    shop = await seller.shop()
    product = await seller.product(
        shop, price=Money(amount_minor=1000, currency="EUR"), commission_bps=2000
    )
    await seller.sellable(product)
    creator = f"creator-{uuid.uuid4().hex[:6]}"
    session = await client.call(
        "live", "POST", "/sessions", json={"creator_id": creator, "title": "Live now"}
    )
    await eventually(
        lambda: client.call(
            "live",
            "POST",
            f"/sessions/{session['session_id']}/pins",
            json={"product_id": product["product_id"]},
        ),
        what="live to know the product",
    )

    async def bought() -> Any:
        response = await client["checkout"].post(
            "/orders",
            headers={"Idempotency-Key": f"live-{session['session_id']}"},
            json=order_body(product, 1, source="live", live_session_id=session["session_id"]),
        )
        return response.json() if response.status_code in (200, 201) else None

    order = await eventually(bought, what="checkout to see the live session")
    assert order["attribution"]["creator_id"] == creator
    await posted(client, order["order_id"], 1)
    assert await balance(client, "creator", creator, "EUR") == -200

    async def tallied() -> Any:
        view = await client.call("live", "GET", f"/sessions/{session['session_id']}")
        return view if view["sales"] else None

    view = await eventually(tallied, what="live to attribute the sale")
    assert [(s["currency"], s["orders"], s["gross"]["amount_minor"]) for s in view["sales"]] == [
        ("EUR", 1, 1000)
    ]

    ended = await client.call("live", "POST", f"/sessions/{session['session_id']}/end")
    assert ended["status"] == "ended"


async def test_bad_requests_get_a_4xx_with_a_message(client: PlatformClient) -> None:
    cases = [
        ("catalog", "POST", "/shops", {"name": ""}, 422),
        ("catalog", "GET", "/products/nope", None, 404),
        ("checkout", "POST", "/orders", {"buyer_id": "b", "lines": []}, 422),
        ("checkout", "GET", "/orders/nope", None, 404),
        ("live", "POST", "/sessions/nope/end", None, 404),
    ]
    for service, method, path, body, status in cases:
        response = await client[service].request(
            method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == status, (service, path, response.text)
        assert response.json()["message"], response.text
