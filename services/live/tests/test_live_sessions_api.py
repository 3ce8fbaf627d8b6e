"""Live's HTTP API over the real PostgreSQL: sessions, pins, end, listing, and the events
each change writes to the outbox in its own transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from vitrine_runtime.db import Database
from vitrine_schemas.envelope import RawEnvelope
from vitrine_schemas.events import ProductStatus, ProductUpserted
from vitrine_schemas.money import Money

PutProduct = Callable[..., Awaitable[ProductUpserted]]


async def events(db: Database) -> list[RawEnvelope]:
    rows = await db.pool.fetch("SELECT payload FROM outbox ORDER BY id")
    return [RawEnvelope.model_validate_json(r["payload"]) for r in rows]


async def start(client: httpx.AsyncClient, creator: str = "c1") -> dict[str, Any]:
    response = await client.post("/sessions", json={"creator_id": creator, "title": "Drop!"})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_session_lifecycle_emits_one_event_per_change(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", price=Money(amount_minor=1500, currency="EUR"))
    await put_product("p2")
    session = await start(client)
    sid = session["session_id"]
    assert session["status"] == "live"
    assert session["pinned_products"] == []
    assert session["sales"] == []

    pinned = await client.post(f"/sessions/{sid}/pins", json={"product_id": "p1"})
    assert pinned.status_code == 201
    assert [p["product_id"] for p in pinned.json()["pinned_products"]] == ["p1"]
    assert pinned.json()["pinned_products"][0]["price"] == {"amount_minor": 1500, "currency": "EUR"}
    again = await client.post(f"/sessions/{sid}/pins", json={"product_id": "p1"})
    assert again.status_code == 200  # no-op, no second event
    assert (
        await client.post(f"/sessions/{sid}/pins", json={"product_id": "p2"})
    ).status_code == 201

    unpinned = await client.delete(f"/sessions/{sid}/pins/p1")
    assert unpinned.status_code == 200
    assert [p["product_id"] for p in unpinned.json()["pinned_products"]] == ["p2"]
    assert (await client.delete(f"/sessions/{sid}/pins/p1")).status_code == 200  # no-op

    ended = await client.post(f"/sessions/{sid}/end")
    assert ended.status_code == 200
    assert ended.json()["status"] == "ended"
    assert ended.json()["ended_at"] is not None
    ended_again = await client.post(f"/sessions/{sid}/end")
    assert ended_again.status_code == 200
    assert ended_again.json() == ended.json()

    log = await events(db)
    assert [e.type for e in log] == [
        "live.started",
        "live.product_pinned",
        "live.product_pinned",
        "live.product_unpinned",
        "live.ended",
    ]
    assert {e.partition_key for e in log} == {sid}
    assert all(e.data["creator_id"] == "c1" for e in log)
    fetched = await client.get(f"/sessions/{sid}")
    assert fetched.json() == ended.json()


async def test_pin_rules(client: httpx.AsyncClient, db: Database, put_product: PutProduct) -> None:
    await put_product("p1")
    await put_product("old", status=ProductStatus.ARCHIVED)
    sid = (await start(client))["session_id"]

    unknown_session = await client.post("/sessions/nope/pins", json={"product_id": "p1"})
    assert unknown_session.status_code == 404
    assert unknown_session.json()["message"] == "live session nope not found"
    unknown_product = await client.post(f"/sessions/{sid}/pins", json={"product_id": "zzz"})
    assert unknown_product.status_code == 404
    assert "product zzz not found" in unknown_product.json()["message"]
    archived = await client.post(f"/sessions/{sid}/pins", json={"product_id": "old"})
    assert archived.status_code == 409
    assert archived.json()["error"] == "product_unavailable"
    bad = await client.post(f"/sessions/{sid}/pins", json={})
    assert bad.status_code == 422

    await client.post(f"/sessions/{sid}/end")
    after_end = await client.post(f"/sessions/{sid}/pins", json={"product_id": "p1"})
    assert after_end.status_code == 409
    assert after_end.json()["error"] == "session_ended"
    assert (await client.delete(f"/sessions/{sid}/pins/p1")).status_code == 409
    assert [e.type for e in await events(db)] == ["live.started", "live.ended"]


async def test_one_live_session_per_creator(client: httpx.AsyncClient, db: Database) -> None:
    responses = await asyncio.gather(
        *(client.post("/sessions", json={"creator_id": "c1", "title": "t"}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    first = next(r.json() for r in responses if r.status_code == 201)
    refused = next(r.json() for r in responses if r.status_code == 409)
    assert refused["error"] == "creator_already_live"
    assert first["session_id"] in refused["message"]
    assert len(await events(db)) == 1
    await client.post(f"/sessions/{first['session_id']}/end")
    await start(client, "c1")  # free to go live again


async def test_listing_and_reading(client: httpx.AsyncClient) -> None:
    s1 = await start(client, "c1")
    await client.post(f"/sessions/{s1['session_id']}/end")
    s2 = await start(client, "c1")
    s3 = await start(client, "c2")
    by_c1 = (await client.get("/sessions", params={"creator_id": "c1"})).json()["sessions"]
    assert [s["session_id"] for s in by_c1] == [s2["session_id"], s1["session_id"]]
    live = (await client.get("/sessions", params={"status": "live"})).json()["sessions"]
    assert {s["session_id"] for s in live} == {s2["session_id"], s3["session_id"]}
    one = (await client.get("/sessions", params={"limit": 1})).json()["sessions"]
    assert len(one) == 1
    assert (await client.get("/sessions/nope")).status_code == 404
    assert (await client.get("/sessions", params={"limit": 0})).status_code == 422
    assert (await client.post("/sessions/nope/end")).status_code == 404


@pytest.mark.parametrize(
    "payload",
    [
        {"creator_id": "c1"},
        {"creator_id": "", "title": "t"},
        {"creator_id": "c", "title": ""},
        {"creator_id": "c", "title": "t", "extra": 1},
    ],
)
async def test_bad_start_requests(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    response = await client.post("/sessions", json=payload)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.json()["message"]


async def test_end_racing_pins_never_pins_an_ended_session(
    client: httpx.AsyncClient, db: Database, put_product: PutProduct
) -> None:
    for i in range(10):
        await put_product(f"p{i}")
    sid = (await start(client))["session_id"]
    calls = [client.post(f"/sessions/{sid}/pins", json={"product_id": f"p{i}"}) for i in range(10)]
    calls.insert(5, client.post(f"/sessions/{sid}/end"))
    await asyncio.gather(*calls)
    log = [e.type for e in await events(db)]
    # Whatever interleaving happened, nothing was pinned after the end.
    assert log[-1] == "live.ended"
    assert log.count("live.ended") == 1
    session = (await client.get(f"/sessions/{sid}")).json()
    assert len(session["pinned_products"]) == log.count("live.product_pinned")


async def test_session_commands_are_counted(client: httpx.AsyncClient) -> None:
    def sample(command: str, result: str) -> float:
        labels = {"command": command, "result": result}
        return REGISTRY.get_sample_value("vitrine_live_session_commands_total", labels) or 0.0

    before = [sample("end", "changed"), sample("end", "unchanged"), sample("end", "not_found")]
    sid = (await start(client))["session_id"]
    await client.post(f"/sessions/{sid}/end")
    await client.post(f"/sessions/{sid}/end")
    await client.post("/sessions/nope/end")
    after = [sample("end", "changed"), sample("end", "unchanged"), sample("end", "not_found")]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
