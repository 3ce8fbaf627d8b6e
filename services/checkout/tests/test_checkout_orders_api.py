"""POST/GET /orders and GET /products over the real PostgreSQL: stock reservation under
concurrency, idempotency, validation, attribution, outbox atomicity."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from checkout_helpers import Deliver, api_client
from prometheus_client import REGISTRY

from vitrine_checkout.settings import CheckoutSettings
from vitrine_checkout.usecases import CheckoutDeps
from vitrine_runtime.db import Database
from vitrine_schemas.envelope import RawEnvelope
from vitrine_schemas.events import (
    LiveEnded,
    LiveStarted,
    OrderPlaced,
    ProductStatus,
    ProductUpserted,
)
from vitrine_schemas.money import Money

PutProduct = Callable[..., Awaitable[ProductUpserted]]
T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)


def body(*lines: tuple[str, int], buyer: str = "buyer-1", **attribution: Any) -> dict[str, Any]:
    return {
        "buyer_id": buyer,
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
        "attribution": attribution or {"source": "none"},
    }


async def post(
    client: httpx.AsyncClient, payload: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post("/orders", json=payload, headers=headers)


async def available(client: httpx.AsyncClient, product_id: str = "p1") -> int:
    response = await client.get(f"/products/{product_id}")
    assert response.status_code == 200
    return int(response.json()["available"])


async def outbox(db: Database) -> list[RawEnvelope]:
    rows = await db.pool.fetch("SELECT payload FROM outbox ORDER BY id")
    return [RawEnvelope.model_validate_json(r["payload"]) for r in rows]


async def count(db: Database, table: str) -> int:
    return int(await db.pool.fetchval(f"SELECT count(*) FROM {table}"))


# --- the happy path -------------------------------------------------------------------


async def test_place_order_reserves_stock_and_writes_the_event_with_it(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=5, commission_bps=1200)
    await put_product("p2", stock=5, price=Money(amount_minor=500, currency="EUR"))
    response = await post(client, body(("p2", 3), ("p1", 2)))
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    order = response.json()
    assert order["status"] == "paid"
    assert order["total"] == {"amount_minor": 2 * 1999 + 3 * 500, "currency": "EUR"}
    assert order["platform_fee_bps"] == 500
    assert [(x["product_id"], x["commission_bps"]) for x in order["lines"]] == [
        ("p2", 1000),
        ("p1", 1200),
    ]
    assert order["refundable"] == order["total"]
    assert order["attribution"]["source"] == "none"
    assert (await available(client, "p1"), await available(client, "p2")) == (3, 2)

    events = await outbox(db)
    assert [e.type for e in events] == ["order.placed"]
    placed = OrderPlaced.model_validate(events[0].data)
    assert placed.order_id == order["order_id"]
    assert placed.total.amount_minor == order["total"]["amount_minor"]
    assert events[0].partition_key == order["order_id"]

    fetched = await client.get(f"/orders/{order['order_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == order


async def test_rates_are_frozen_on_the_order(
    client: httpx.AsyncClient, deps: CheckoutDeps, put_product: PutProduct
) -> None:
    await put_product("p1", commission_bps=1000)
    order = (await post(client, body(("p1", 1)))).json()
    await put_product(
        "p1", version=2, commission_bps=3000, price=Money(amount_minor=1, currency="EUR")
    )
    # The platform raises its fee: a new deployment, the same database.
    raised = dataclasses.replace(deps, settings=CheckoutSettings(platform_fee_bps=900))
    async with api_client(raised) as after_change:
        again = (await after_change.get(f"/orders/{order['order_id']}")).json()
        newer = (await post(after_change, body(("p1", 1)))).json()
    assert again["lines"][0]["commission_bps"] == 1000
    assert again["lines"][0]["unit_price"]["amount_minor"] == 1999
    assert again["platform_fee_bps"] == 500
    assert newer["platform_fee_bps"] == 900
    assert newer["lines"][0]["commission_bps"] == 3000


# --- concurrency ----------------------------------------------------------------------


async def test_two_buyers_for_the_last_unit_exactly_one_wins(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=1)
    responses = await asyncio.gather(
        post(client, body(("p1", 1), buyer="alice")),
        post(client, body(("p1", 1), buyer="bob")),
    )
    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"] == "out_of_stock"
    assert await available(client) == 0
    assert await count(db, "orders") == 1
    assert len(await outbox(db)) == 1


async def test_many_buyers_never_oversell(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=5)
    responses = await asyncio.gather(
        *(post(client, body(("p1", 1), buyer=f"b{i}")) for i in range(20))
    )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 5
    assert codes.count(409) == 15
    assert await available(client) == 0
    assert len(await outbox(db)) == 5


async def test_crossed_multi_line_orders_do_not_deadlock(
    client: httpx.AsyncClient, put_product: PutProduct
) -> None:
    await put_product("a", stock=50)
    await put_product("b", stock=50)
    orders = [body(("a", 1), ("b", 1)) if i % 2 else body(("b", 1), ("a", 1)) for i in range(20)]
    responses = await asyncio.gather(*(post(client, o) for o in orders))
    assert [r.status_code for r in responses] == [201] * 20
    assert (await available(client, "a"), await available(client, "b")) == (30, 30)


async def test_concurrent_retries_with_one_key_make_one_order(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=10)
    payload = body(("p1", 2))
    responses = await asyncio.gather(*(post(client, payload, key="k-1") for _ in range(5)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 200, 201]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert await available(client) == 8
    assert await count(db, "orders") == 1


# --- idempotency ----------------------------------------------------------------------


async def test_replay_returns_the_same_order(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=5)
    first = await post(client, body(("p1", 1)), key="same")
    # Same request, keys in another order: still the same request.
    reordered = {
        "attribution": {"source": "none"},
        "lines": [{"quantity": 1, "product_id": "p1"}],
        "buyer_id": "buyer-1",
    }
    second = await post(client, reordered, key="same")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert await available(client) == 4
    assert len(await outbox(db)) == 1


async def test_same_key_with_another_request_is_refused(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=5)
    assert (await post(client, body(("p1", 1)), key="k")).status_code == 201
    response = await post(client, body(("p1", 2)), key="k")
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert "different order request" in response.json()["message"]
    assert await available(client) == 4


async def test_missing_idempotency_key_is_a_clear_error(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1")
    response = await client.post("/orders", json=body(("p1", 1)))
    assert response.status_code == 422
    assert "Idempotency-Key header is required" in response.json()["message"]
    blank = await client.post("/orders", json=body(("p1", 1)), headers={"Idempotency-Key": " "})
    assert blank.status_code == 422
    assert await count(db, "orders") == 0


async def test_a_failed_order_leaves_nothing_behind(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("a", stock=5)
    await put_product("b", stock=1)
    response = await post(client, body(("a", 2), ("b", 2)), key="retry-me")
    assert response.status_code == 409
    assert response.json()["error"] == "out_of_stock"
    assert "b (asked 2, 1 left)" in response.json()["message"]
    assert (await available(client, "a"), await available(client, "b")) == (5, 1)
    assert await outbox(db) == []
    assert await count(db, "orders") == 0
    assert await count(db, "idempotency_keys") == 0
    # The key was not spent: after a restock, the same retry goes through.
    await put_product("b", version=2, stock=3, stock_version=2)
    assert (await post(client, body(("a", 2), ("b", 2)), key="retry-me")).status_code == 201


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "fragment"),
    [
        (body(("p1", 0)), 422, "lines.0.quantity"),
        ({"buyer_id": "b", "lines": []}, 422, "lines"),
        ({"lines": [{"product_id": "p1", "quantity": 1}]}, 422, "buyer_id"),
        (body(("p1", 1)) | {"extra": 1}, 422, "extra"),
        (body(("p1", 1), source="bogus"), 422, "attribution.source"),
        (body(("nope", 1)), 404, "product not found: nope"),
        (body(("p1", 1), ("p1", 1)), 422, "two lines"),
        (body(("p1", 1), ("other-shop", 1)), 422, "one shop"),
        (body(("p1", 1), ("usd", 1)), 422, "one currency"),
        (body(("archived", 1)), 409, "not for sale"),
        (body(("p1", 11)), 409, "asked 11, 10 left"),
        (body(("p1", 1), source="auto_identified", creator_id="c1"), 422, "needs video_id"),
        (body(("p1", 1), source="none", creator_id="c1"), 422, "remove creator_id"),
        (body(("p1", 1), source="live"), 422, "needs live_session_id"),
    ],
)
async def test_bad_orders_are_refused_with_a_message(
    client: httpx.AsyncClient,
    db: Database,
    put_product: PutProduct,
    payload: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    await put_product("p1")
    await put_product("other-shop", shop_id="shop-2")
    await put_product("usd", price=Money(amount_minor=100, currency="USD"))
    await put_product("archived", status=ProductStatus.ARCHIVED)
    response = await post(client, payload)
    assert response.status_code == status, response.text
    assert fragment in response.json()["message"]
    assert await count(db, "orders") == 0
    assert await outbox(db) == []


async def test_unknown_order_and_product_are_404(client: httpx.AsyncClient) -> None:
    order = await client.get("/orders/nope")
    assert order.status_code == 404
    assert order.json() == {"error": "not_found", "message": "order nope not found"}
    assert (await client.get("/products/nope")).status_code == 404


# --- attribution ----------------------------------------------------------------------


async def test_video_attribution_is_recorded(
    client: httpx.AsyncClient, put_product: PutProduct
) -> None:
    await put_product("p1")
    response = await post(
        client, body(("p1", 1), source="creator_tagged", creator_id="c1", video_id="v1")
    )
    assert response.status_code == 201
    assert response.json()["attribution"] == {
        "source": "creator_tagged",
        "creator_id": "c1",
        "video_id": "v1",
        "live_session_id": None,
    }


async def test_live_attribution_follows_the_session(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct, deliver: Deliver
) -> None:
    await put_product("p1")
    live = {"source": "live", "live_session_id": "s1"}
    missing = await post(client, body(("p1", 1), **live))
    assert missing.status_code == 404
    assert "live session s1 not found" in missing.json()["message"]

    await deliver(LiveStarted(session_id="s1", creator_id="host", title="t", started_at=T0))
    placed = await post(client, body(("p1", 1), **live))
    assert placed.status_code == 201
    assert placed.json()["attribution"]["creator_id"] == "host"
    wrong = await post(client, body(("p1", 1), **live, creator_id="someone"))
    assert wrong.status_code == 422
    assert "not the host" in wrong.json()["message"]

    await deliver(LiveEnded(session_id="s1", creator_id="host", ended_at=T0))
    ended = await post(client, body(("p1", 1), **live))
    assert ended.status_code == 409
    assert ended.json()["error"] == "session_not_live"
    assert await count(db, "orders") == 1


# --- metrics --------------------------------------------------------------------------


def sample(result: str) -> float:
    value = REGISTRY.get_sample_value("vitrine_checkout_order_requests_total", {"result": result})
    return value or 0.0


async def test_order_outcomes_are_counted(
    client: httpx.AsyncClient, put_product: PutProduct
) -> None:
    await put_product("p1", stock=1)
    before = {r: sample(r) for r in ("placed", "replayed", "out_of_stock")}
    await post(client, body(("p1", 1)), key="m")
    await post(client, body(("p1", 1)), key="m")
    await post(client, body(("p1", 1)))
    assert {r: sample(r) - before[r] for r in before} == {
        "placed": 1,
        "replayed": 1,
        "out_of_stock": 1,
    }
