"""Sales attributed to live sessions, from order.placed / order.refunded, and live's
catalog projection: through the real consumer against PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from live_helpers import Deliver, envelope_of, order_placed, order_refunded, product_event

from vitrine_live.adapters import repository as repo
from vitrine_runtime.consumer import Outcome
from vitrine_runtime.db import Database


async def live_session(client: httpx.AsyncClient) -> str:
    response = await client.post("/sessions", json={"creator_id": "host", "title": "t"})
    return str(response.json()["session_id"])


async def sales(client: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    return list((await client.get(f"/sessions/{sid}")).json()["sales"])


def line(currency: str, orders: int, gross: int, refunded: int) -> dict[str, Any]:
    def money(n: int) -> dict[str, Any]:
        return {"amount_minor": n, "currency": currency}

    return {
        "currency": currency,
        "orders": orders,
        "gross": money(gross),
        "refunded": money(refunded),
        "net": money(gross - refunded),
    }


async def test_live_orders_count_per_currency(client: httpx.AsyncClient, deliver: Deliver) -> None:
    sid = await live_session(client)
    assert await deliver(order_placed("o1", sid, 1000)) is Outcome.HANDLED
    await deliver(order_placed("o2", sid, 2550))
    await deliver(order_placed("o3", sid, 700, "JPY"))
    await deliver(order_placed("o4", None, 99999))  # not a live sale
    assert await sales(client, sid) == [line("EUR", 2, 3550, 0), line("JPY", 1, 700, 0)]


async def test_each_order_counts_once(client: httpx.AsyncClient, deliver: Deliver) -> None:
    sid = await live_session(client)
    envelope = envelope_of(order_placed("o1", sid, 1000))
    assert await deliver(envelope) is Outcome.HANDLED
    assert await deliver(envelope) is Outcome.DUPLICATE
    # The same order re-emitted under a new event id (a producer retry) is not recounted.
    assert await deliver(order_placed("o1", sid, 1000)) is Outcome.HANDLED
    assert await sales(client, sid) == [line("EUR", 1, 1000, 0)]


async def test_refunds_of_live_orders_are_subtracted(
    client: httpx.AsyncClient, deliver: Deliver
) -> None:
    sid = await live_session(client)
    await deliver(order_placed("o1", sid, 1000))
    await deliver(order_placed("o2", sid, 500))
    await deliver(order_placed("plain", None, 800))

    await deliver(order_refunded("o1", 300, 300, 1000))
    assert await sales(client, sid) == [line("EUR", 2, 1500, 300)]
    later = order_refunded("o1", 700, 1000, 1000)
    await deliver(later)
    # An older cumulative total arriving late, and a redelivery, change nothing.
    await deliver(order_refunded("o1", 300, 300, 1000))
    await deliver(envelope_of(later))
    await deliver(order_refunded("plain", 800, 800, 800))
    assert await sales(client, sid) == [line("EUR", 2, 1500, 1000)]


async def test_sales_keep_counting_after_the_session_ended(
    client: httpx.AsyncClient, deliver: Deliver
) -> None:
    # Checkout accepted the order while the session was live; the event may arrive later.
    sid = await live_session(client)
    await client.post(f"/sessions/{sid}/end")
    await deliver(order_placed("o1", sid, 1000))
    assert await sales(client, sid) == [line("EUR", 1, 1000, 0)]


async def test_order_for_an_unknown_session_is_dead_lettered(
    deliver: Deliver, dead_letters: list[tuple[str, dict[str, str]]]
) -> None:
    assert await deliver(order_placed("o1", "ghost", 1000)) is Outcome.DEAD_LETTERED
    topic, headers = dead_letters[0]
    assert topic == "dlq.live"
    assert "unknown live session ghost" in headers["dlq-detail"]


async def test_product_projection_is_version_gated(db: Database, deliver: Deliver) -> None:
    await deliver(product_event("p1", version=2, title="new"))
    await deliver(product_event("p1", version=1, title="old"))
    async with db.pool.acquire() as conn:
        product = await repo.get_product(conn, "p1")
    assert product is not None
    assert (product.title, product.version) == ("new", 2)
