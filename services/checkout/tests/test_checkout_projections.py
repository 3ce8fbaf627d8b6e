"""Checkout's projections of catalog products and live sessions, through the real consumer
(inbox dedup included) against PostgreSQL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from checkout_helpers import Deliver, envelope_of, product_event

from vitrine_checkout.adapters import repository as repo
from vitrine_checkout.domain.model import SessionStatus
from vitrine_runtime.consumer import Outcome
from vitrine_runtime.db import Database
from vitrine_schemas.events import (
    LiveEnded,
    LiveProductPinned,
    LiveProductUnpinned,
    LiveStarted,
    ProductStatus,
    ProductUpserted,
)
from vitrine_schemas.money import Money

PutProduct = Callable[..., Awaitable[ProductUpserted]]
T0 = datetime(2025, 5, 1, 12, tzinfo=UTC)


async def stored(db: Database, product_id: str = "p1") -> Any:
    async with db.pool.acquire() as conn:
        return await repo.get_product(conn, product_id)


async def test_new_product_is_projected(db: Database, deliver: Deliver) -> None:
    assert await deliver(product_event("p1", stock=7)) is Outcome.HANDLED
    product = await stored(db)
    assert product.available == 7
    assert product.unit_price == Money(amount_minor=1999, currency="EUR")
    assert product.commission_bps == 1000
    assert product.version == 1


async def test_redelivered_event_is_skipped_by_the_inbox(db: Database, deliver: Deliver) -> None:
    envelope = envelope_of(product_event("p1", stock=7))
    assert await deliver(envelope) is Outcome.HANDLED
    assert await deliver(envelope) is Outcome.DUPLICATE


async def test_older_or_equal_version_is_ignored(db: Database, deliver: Deliver) -> None:
    await deliver(product_event("p1", version=3, title="v3", stock=5, stock_version=2))
    await deliver(product_event("p1", version=2, title="v2", stock=99, stock_version=1))
    await deliver(product_event("p1", version=3, title="v3 again", stock=42, stock_version=3))
    product = await stored(db)
    assert (product.title, product.version, product.available) == ("v3", 3, 5)


async def test_edits_do_not_undo_sales_but_a_new_stock_figure_does(
    db: Database, deliver: Deliver
) -> None:
    await deliver(product_event("p1", version=1, stock=10, stock_version=1))
    async with db.transaction() as conn:
        assert await repo.reserve_stock(conn, "p1", 4)
    # A price edit: newer version, same stock figure and stock_version.
    await deliver(
        product_event(
            "p1",
            version=2,
            stock=10,
            stock_version=1,
            price=Money(amount_minor=2500, currency="EUR"),
            commission_bps=2000,
        )
    )
    product = await stored(db)
    assert product.available == 6
    assert product.unit_price.amount_minor == 2500
    assert product.commission_bps == 2000
    # The seller restocks: the absolute figure wins.
    await deliver(product_event("p1", version=3, stock=20, stock_version=2))
    assert (await stored(db)).available == 20
    # Archiving keeps the numbers but takes the product off sale.
    await deliver(
        product_event("p1", version=4, stock=20, stock_version=2, status=ProductStatus.ARCHIVED)
    )
    product = await stored(db)
    assert product.status is ProductStatus.ARCHIVED
    assert product.available == 20


async def test_negative_price_is_dead_lettered(
    db: Database, deliver: Deliver, dead_letters: list[tuple[str, dict[str, str]]]
) -> None:
    outcome = await deliver(product_event("p1", price=Money(amount_minor=-1, currency="EUR")))
    assert outcome is Outcome.DEAD_LETTERED
    assert dead_letters[0][0] == "dlq.checkout"
    assert dead_letters[0][1]["dlq-reason"] == "rejected"
    assert await stored(db) is None


async def session(db: Database, session_id: str = "s1") -> Any:
    async with db.pool.acquire() as conn:
        return await repo.get_session(conn, session_id)


async def test_live_session_projection(db: Database, deliver: Deliver) -> None:
    await deliver(LiveStarted(session_id="s1", creator_id="c1", title="Hi", started_at=T0))
    s = await session(db)
    assert s.status is SessionStatus.LIVE
    assert s.creator_id == "c1"
    assert s.pinned_product_ids == frozenset()

    pin = LiveProductPinned(
        session_id="s1", creator_id="c1", product_id="p1", pinned_at=T0 + timedelta(seconds=1)
    )
    await deliver(pin)
    await deliver(
        LiveProductPinned(
            session_id="s1", creator_id="c1", product_id="p2", pinned_at=T0 + timedelta(seconds=2)
        )
    )
    assert (await session(db)).pinned_product_ids == {"p1", "p2"}
    await deliver(
        LiveProductUnpinned(
            session_id="s1", creator_id="c1", product_id="p1", unpinned_at=T0 + timedelta(seconds=3)
        )
    )
    assert (await session(db)).pinned_product_ids == {"p2"}
    # The same pin, re-emitted late under a new event id, must not undo the newer unpin.
    await deliver(pin.model_copy())
    assert (await session(db)).pinned_product_ids == {"p2"}

    await deliver(LiveEnded(session_id="s1", creator_id="c1", ended_at=T0 + timedelta(hours=1)))
    assert (await session(db)).status is SessionStatus.ENDED
    # A late start never brings an ended session back.
    await deliver(LiveStarted(session_id="s1", creator_id="c1", title="Hi", started_at=T0))
    assert (await session(db)).status is SessionStatus.ENDED


async def test_pin_without_a_seen_start_still_makes_a_live_session(
    db: Database, deliver: Deliver
) -> None:
    await deliver(
        LiveProductPinned(session_id="s9", creator_id="c9", product_id="p1", pinned_at=T0)
    )
    s = await session(db, "s9")
    assert s.status is SessionStatus.LIVE
    assert s.pinned_product_ids == {"p1"}
