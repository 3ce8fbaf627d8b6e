"""Checkout's event handlers: projections of the catalog and of live sessions.

Each runs inside the consumer's transaction, after the inbox has claimed the event id,
so a redelivered event is skipped; the projections are also version- or time-gated so an
older snapshot arriving late never overwrites a newer one.
"""

from __future__ import annotations

import asyncpg

from vitrine_checkout.adapters import repository as repo
from vitrine_checkout.domain.projections import ProjectionRejected, check_sellable_snapshot
from vitrine_runtime.consumer import EventConsumer, PermanentError
from vitrine_runtime.logging import get_logger
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import (
    LiveEnded,
    LiveProductPinned,
    LiveProductUnpinned,
    LiveStarted,
    ProductUpserted,
)

log = get_logger(__name__)


async def on_product_upserted(
    envelope: Envelope[ProductUpserted], conn: asyncpg.Connection
) -> None:
    event = envelope.data
    try:
        check_sellable_snapshot(event)
    except ProjectionRejected as exc:
        raise PermanentError(str(exc)) from exc
    if not await repo.upsert_product(conn, event):
        log.info(
            "stale_product_snapshot_ignored", product_id=event.product_id, version=event.version
        )


async def on_live_started(envelope: Envelope[LiveStarted], conn: asyncpg.Connection) -> None:
    e = envelope.data
    await repo.upsert_session_started(conn, e.session_id, e.creator_id, e.title, e.started_at)


async def on_live_product_pinned(
    envelope: Envelope[LiveProductPinned], conn: asyncpg.Connection
) -> None:
    e = envelope.data
    await repo.ensure_session(conn, e.session_id, e.creator_id)
    await repo.set_pin(conn, e.session_id, e.product_id, True, e.pinned_at)


async def on_live_product_unpinned(
    envelope: Envelope[LiveProductUnpinned], conn: asyncpg.Connection
) -> None:
    e = envelope.data
    await repo.ensure_session(conn, e.session_id, e.creator_id)
    await repo.set_pin(conn, e.session_id, e.product_id, False, e.unpinned_at)


async def on_live_ended(envelope: Envelope[LiveEnded], conn: asyncpg.Connection) -> None:
    e = envelope.data
    await repo.mark_session_ended(conn, e.session_id, e.creator_id, e.ended_at)


def register_handlers(consumer: EventConsumer) -> None:
    consumer.on(ProductUpserted)(on_product_upserted)
    consumer.on(LiveStarted)(on_live_started)
    consumer.on(LiveProductPinned)(on_live_product_pinned)
    consumer.on(LiveProductUnpinned)(on_live_product_unpinned)
    consumer.on(LiveEnded)(on_live_ended)
