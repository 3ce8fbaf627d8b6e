"""Group commit over the real PostgreSQL: orders that arrive together share a transaction,
yet each is judged, refused, replayed and traced exactly as if it had come alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from vitrine_checkout import usecases
from vitrine_checkout.adapters import repository
from vitrine_checkout.domain.errors import IdempotencyKeyReusedError, OutOfStockError
from vitrine_checkout.domain.idempotency import request_fingerprint
from vitrine_checkout.domain.model import AttributionRequest, LineRequest, OrderRequest
from vitrine_checkout.settings import CheckoutSettings
from vitrine_checkout.usecases import CheckoutDeps, OrderAttempt, Outcome
from vitrine_runtime.db import Database
from vitrine_runtime.errors import NotFoundError
from vitrine_schemas.envelope import RawEnvelope
from vitrine_schemas.events import AttributionSource, ProductUpserted

PutProduct = Callable[..., Awaitable[ProductUpserted]]


@pytest.fixture
def settings() -> CheckoutSettings:
    """`place_orders` is called directly here: one run is enough."""
    return CheckoutSettings(platform_fee_bps=500)


def attempt(key: str, *lines: tuple[str, int], buyer: str = "b1", flow: str = "") -> OrderAttempt:
    request = OrderRequest(
        buyer_id=buyer,
        lines=tuple(LineRequest(product_id=p, quantity=q) for p, q in lines),
        attribution=AttributionRequest(source=AttributionSource.NONE),
    )
    fingerprint: dict[str, Any] = {"buyer": buyer, "lines": [list(line) for line in lines]}
    return OrderAttempt(
        request, key, request_fingerprint("place_order", fingerprint), flow or f"flow-{key}"
    )


async def stock(db: Database, product_id: str) -> int:
    return int(
        await db.pool.fetchval("SELECT available FROM products WHERE product_id = $1", product_id)
    )


async def outbox(db: Database) -> list[RawEnvelope]:
    rows = await db.pool.fetch("SELECT payload FROM outbox ORDER BY id")
    return [RawEnvelope.model_validate_json(r["payload"]) for r in rows]


async def test_each_order_of_a_batch_gets_its_own_verdict(
    deps: CheckoutDeps, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=3)
    await put_product("p2", stock=10)
    results = await usecases.place_orders(
        deps,
        [
            attempt("k1", ("p1", 2)),
            attempt("k2", ("p1", 2)),  # only 1 left after k1: refused
            attempt("k3", ("p2", 1), ("p1", 1)),  # takes the last p1
            attempt("k4", ("nope", 1)),
            attempt("k5", ("p2", 4)),
        ],
    )

    assert [type(r) for r in results] == [
        Outcome,
        OutOfStockError,
        Outcome,
        NotFoundError,
        Outcome,
    ]
    assert "1 left" in str(results[1])
    placed = [r for r in results if isinstance(r, Outcome)]
    assert (await stock(db, "p1"), await stock(db, "p2")) == (0, 5)
    events = await outbox(db)
    assert [e.data["order_id"] for e in events] == [o.order.order_id for o in placed]
    # Each event carries the flow of the request that placed it, not the batch's first.
    assert [e.correlation_id for e in events] == ["flow-k1", "flow-k3", "flow-k5"]
    assert int(await db.pool.fetchval("SELECT count(*) FROM orders")) == 3


async def test_a_refused_order_gives_its_key_back(
    deps: CheckoutDeps, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=1)
    first = await usecases.place_orders(deps, [attempt("a", ("p1", 1)), attempt("b", ("p1", 1))])
    assert isinstance(first[1], OutOfStockError)

    await put_product("p1", stock=5, stock_version=2, version=2)
    (retried,) = await usecases.place_orders(deps, [attempt("b", ("p1", 1))])
    assert isinstance(retried, Outcome)
    assert not retried.replayed


async def test_repeated_and_reused_keys_replay_after_the_commit(
    deps: CheckoutDeps, db: Database, put_product: PutProduct
) -> None:
    await put_product("p1", stock=10)
    (earlier,) = await usecases.place_orders(deps, [attempt("old", ("p1", 1))])
    assert isinstance(earlier, Outcome)

    results = await usecases.place_orders(
        deps,
        [
            attempt("new", ("p1", 2)),
            attempt("new", ("p1", 2)),  # the same request twice in one batch
            attempt("old", ("p1", 1)),  # a retry of an order placed before
            attempt("old", ("p1", 3)),  # the same key for another request
        ],
    )

    new, again, old, reused = results
    assert isinstance(new, Outcome)
    assert isinstance(again, Outcome)
    assert isinstance(old, Outcome)
    assert (new.replayed, again.replayed, old.replayed) == (False, True, True)
    assert again.order.order_id == new.order.order_id
    assert old.order.order_id == earlier.order.order_id
    assert isinstance(reused, IdempotencyKeyReusedError)
    assert await stock(db, "p1") == 10 - 1 - 2
    assert len(await outbox(db)) == 2


async def test_a_failing_batch_is_placed_again_order_by_order(
    deps: CheckoutDeps, db: Database, put_product: PutProduct, monkeypatch: pytest.MonkeyPatch
) -> None:
    await put_product("p1", stock=10)

    async def broken(conn: asyncpg.Connection, quantities: object) -> bool:
        await conn.execute("SELECT 1/0")  # a fault only the bulk statement hits
        return True

    monkeypatch.setattr(repository, "reserve_stock_many", broken)
    results = await usecases.place_orders(
        deps, [attempt("k1", ("p1", 1)), attempt("k2", ("p1", 20)), attempt("k3", ("p1", 2))]
    )

    assert [type(r) for r in results] == [Outcome, OutOfStockError, Outcome]
    assert await stock(db, "p1") == 7  # nothing of the failed batch stayed
    events = await outbox(db)
    assert [e.correlation_id for e in events] == ["flow-k1", "flow-k3"]
    assert int(await db.pool.fetchval("SELECT count(*) FROM idempotency_keys")) == 2
