"""Live's event handlers: the catalog projection (for pinning) and session sales.

They run in the consumer's transaction after the inbox claimed the event id; they are
also idempotent by themselves (an order is counted once per order id, refunds apply
their cumulative total), so a replay from another consumer group's copy is harmless.
"""

from __future__ import annotations

import asyncpg

from vitrine_live.adapters import repository as repo
from vitrine_live.domain.sessions import refund_delta
from vitrine_runtime.consumer import EventConsumer, PermanentError
from vitrine_runtime.logging import get_logger
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import OrderPlaced, OrderRefunded, ProductUpserted

log = get_logger(__name__)


async def on_product_upserted(
    envelope: Envelope[ProductUpserted], conn: asyncpg.Connection
) -> None:
    event = envelope.data
    if not await repo.upsert_product(conn, event):
        log.info(
            "stale_product_snapshot_ignored", product_id=event.product_id, version=event.version
        )


async def on_order_placed(envelope: Envelope[OrderPlaced], conn: asyncpg.Connection) -> None:
    event = envelope.data
    session_id = event.attribution.live_session_id
    if session_id is None:
        return  # not a live sale
    if not await repo.session_exists(conn, session_id):
        # Checkout accepts live orders only for sessions live announced, so this order
        # names a session that never existed here: park it for an operator.
        raise PermanentError(f"order {event.order_id} names unknown live session {session_id}")
    await repo.record_sale(
        conn,
        order_id=event.order_id,
        session_id=session_id,
        total=event.total,
        placed_at=event.placed_at,
    )


async def on_order_refunded(envelope: Envelope[OrderRefunded], conn: asyncpg.Connection) -> None:
    event = envelope.data
    order = await repo.attributed_order(conn, event.order_id)
    if order is None:
        return  # the order was not a live sale
    if event.refunded_total.currency != order["currency"]:
        raise PermanentError(
            f"refund {event.refund_id} is in {event.refunded_total.currency}; order"
            f" {event.order_id} was placed in {order['currency']}"
        )
    delta = refund_delta(
        order["refunded_minor"], event.refunded_total.amount_minor, order["total_minor"]
    )
    if delta:
        await repo.record_refund(
            conn,
            order_id=event.order_id,
            session_id=order["session_id"],
            currency=order["currency"],
            delta_minor=delta,
        )


def register_handlers(consumer: EventConsumer) -> None:
    consumer.on(ProductUpserted)(on_product_upserted)
    consumer.on(OrderPlaced)(on_order_placed)
    consumer.on(OrderRefunded)(on_order_refunded)
