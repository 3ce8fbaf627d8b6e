"""POST /orders/{id}/refunds: full and partial refunds, limits, idempotency, the event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from vitrine_runtime.db import Database
from vitrine_schemas.envelope import RawEnvelope
from vitrine_schemas.events import OrderRefunded, ProductUpserted
from vitrine_schemas.money import Money

PutProduct = Callable[..., Awaitable[ProductUpserted]]


@pytest.fixture
async def order_id(client: httpx.AsyncClient, put_product: PutProduct) -> str:
    """A paid order of 2 x 10.00 EUR = 20.00 EUR."""
    await put_product("p1", stock=5, price=Money(amount_minor=1000, currency="EUR"))
    response = await client.post(
        "/orders",
        json={"buyer_id": "b1", "lines": [{"product_id": "p1", "quantity": 2}]},
        headers={"Idempotency-Key": "order-1"},
    )
    assert response.status_code == 201
    return str(response.json()["order_id"])


async def refund(
    client: httpx.AsyncClient, order_id: str, payload: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await client.post(
        f"/orders/{order_id}/refunds",
        json=payload,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


async def refund_events(db: Database) -> list[OrderRefunded]:
    rows = await db.pool.fetch(
        "SELECT payload FROM outbox WHERE event_type = 'order.refunded' ORDER BY id"
    )
    return [
        OrderRefunded.model_validate(RawEnvelope.model_validate_json(r["payload"]).data)
        for r in rows
    ]


async def test_full_refund_by_default(
    client: httpx.AsyncClient, db: Database, order_id: str
) -> None:
    response = await refund(client, order_id, {"reason": "damaged"})
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["refund"]["amount"] == {"amount_minor": 2000, "currency": "EUR"}
    assert result["refund"]["reason"] == "damaged"
    assert result["order"]["status"] == "refunded"
    assert result["order"]["refundable"]["amount_minor"] == 0
    [event] = await refund_events(db)
    assert event.refund_id == result["refund"]["refund_id"]
    assert (event.amount.amount_minor, event.refunded_total.amount_minor) == (2000, 2000)
    assert event.order_total.amount_minor == 2000
    assert event.reason == "damaged"


async def test_partial_refunds_accumulate(
    client: httpx.AsyncClient, db: Database, order_id: str
) -> None:
    first = await refund(client, order_id, {"amount_minor": 300})
    second = await refund(client, order_id, {"amount_minor": 700})
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["order"]["status"] == "partially_refunded"
    order = (await client.get(f"/orders/{order_id}")).json()
    assert order["refunded_total"]["amount_minor"] == 1000
    assert order["refundable"]["amount_minor"] == 1000
    assert [r["amount"]["amount_minor"] for r in order["refunds"]] == [300, 700]
    assert [r["refunded_total"]["amount_minor"] for r in order["refunds"]] == [300, 1000]
    events = await refund_events(db)
    assert [e.refunded_total.amount_minor for e in events] == [300, 1000]
    rest = await refund(client, order_id, {})
    assert rest.json()["refund"]["amount"]["amount_minor"] == 1000
    assert rest.json()["order"]["status"] == "refunded"


async def test_refund_limits(client: httpx.AsyncClient, db: Database, order_id: str) -> None:
    too_much = await refund(client, order_id, {"amount_minor": 2001})
    assert too_much.status_code == 409
    assert too_much.json()["error"] == "refund_exceeds_remaining"
    assert "20.01 EUR exceeds the 20.00 EUR" in too_much.json()["message"]
    for bad in (0, -5):
        response = await refund(client, order_id, {"amount_minor": bad})
        assert response.status_code == 422
        assert "amount_minor" in response.json()["message"]
    assert (await refund(client, order_id, {"amount_minor": 2000})).status_code == 201
    again = await refund(client, order_id, {"amount_minor": 1})
    assert again.status_code == 409
    assert "already fully refunded" in again.json()["message"]
    assert len(await refund_events(db)) == 1


async def test_refund_of_unknown_order_and_missing_key(
    client: httpx.AsyncClient, order_id: str
) -> None:
    assert (await refund(client, "nope", {})).status_code == 404
    response = await client.post(f"/orders/{order_id}/refunds", json={})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["message"]


async def test_refund_replay_and_mismatch(
    client: httpx.AsyncClient, db: Database, order_id: str
) -> None:
    first = await refund(client, order_id, {"amount_minor": 500}, key="r-1")
    replay = await refund(client, order_id, {"amount_minor": 500}, key="r-1")
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["refund"] == first.json()["refund"]
    mismatch = await refund(client, order_id, {"amount_minor": 600}, key="r-1")
    assert mismatch.status_code == 409
    assert mismatch.json()["error"] == "idempotency_key_reused"
    # The order key namespace is separate from the refund one.
    assert (await refund(client, order_id, {"amount_minor": 1}, key="order-1")).status_code == 201
    assert [e.amount.amount_minor for e in await refund_events(db)] == [500, 1]


async def test_concurrent_refunds_of_the_rest_cannot_both_succeed(
    client: httpx.AsyncClient, db: Database, order_id: str
) -> None:
    responses = await asyncio.gather(*(refund(client, order_id, {}) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    order = (await client.get(f"/orders/{order_id}")).json()
    assert order["refunded_total"]["amount_minor"] == 2000
    assert len(await refund_events(db)) == 1
