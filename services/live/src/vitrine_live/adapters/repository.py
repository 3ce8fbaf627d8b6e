"""Live's SQL (asyncpg, the service's own schema), on the caller's connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from vitrine_live.domain.model import Pin, Product, Sales, Session, SessionStatus
from vitrine_schemas.events import ProductStatus, ProductUpserted
from vitrine_schemas.money import Money

# --- products -------------------------------------------------------------------------


def _product(row: asyncpg.Record) -> Product:
    return Product(
        product_id=row["product_id"],
        shop_id=row["shop_id"],
        title=row["title"],
        price=Money(amount_minor=row["price_minor"], currency=row["currency"]),
        status=ProductStatus(row["status"]),
        version=row["version"],
    )


async def upsert_product(conn: asyncpg.Connection, event: ProductUpserted) -> bool:
    """Apply a catalog snapshot only if newer than the stored one; True if it changed."""
    changed = await conn.fetchval(
        """
        INSERT INTO products AS p (product_id, shop_id, title, price_minor, currency, status,
            version)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (product_id) DO UPDATE SET
            shop_id = EXCLUDED.shop_id, title = EXCLUDED.title,
            price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency,
            status = EXCLUDED.status, version = EXCLUDED.version, updated_at = now()
        WHERE EXCLUDED.version > p.version
        RETURNING true
        """,
        event.product_id,
        event.shop_id,
        event.title,
        event.price.amount_minor,
        event.price.currency,
        event.status.value,
        event.version,
    )
    return bool(changed)


async def get_product(conn: asyncpg.Connection, product_id: str) -> Product | None:
    row = await conn.fetchrow("SELECT * FROM products WHERE product_id = $1", product_id)
    return _product(row) if row else None


# --- sessions -------------------------------------------------------------------------


async def insert_session(conn: asyncpg.Connection, session: Session) -> bool:
    """Insert a new live session; False if the creator already has one live.

    The partial unique index arbitrates, so two concurrent starts cannot both succeed.
    """
    inserted = await conn.fetchval(
        "INSERT INTO sessions (session_id, creator_id, title, status, started_at)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (creator_id) WHERE status = 'live' DO NOTHING RETURNING true",
        session.session_id,
        session.creator_id,
        session.title,
        session.status.value,
        session.started_at,
    )
    return bool(inserted)


async def live_session_of(conn: asyncpg.Connection, creator_id: str) -> str | None:
    value = await conn.fetchval(
        "SELECT session_id FROM sessions WHERE creator_id = $1 AND status = 'live'", creator_id
    )
    return str(value) if value is not None else None


async def mark_ended(conn: asyncpg.Connection, session_id: str, ended_at: datetime) -> None:
    await conn.execute(
        "UPDATE sessions SET status = 'ended', ended_at = $2 WHERE session_id = $1",
        session_id,
        ended_at,
    )


async def add_pin(
    conn: asyncpg.Connection, session_id: str, product_id: str, pinned_at: datetime
) -> bool:
    """Pin a product; False if it was pinned already."""
    added = await conn.fetchval(
        "INSERT INTO session_pins (session_id, product_id, pinned_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        session_id,
        product_id,
        pinned_at,
    )
    return bool(added)


async def remove_pin(conn: asyncpg.Connection, session_id: str, product_id: str) -> bool:
    """Unpin a product; False if it was not pinned."""
    removed = await conn.fetchval(
        "DELETE FROM session_pins WHERE session_id = $1 AND product_id = $2 RETURNING true",
        session_id,
        product_id,
    )
    return bool(removed)


def _session(row: asyncpg.Record, pins: Sequence[Pin], sales: Sequence[Sales]) -> Session:
    return Session(
        session_id=row["session_id"],
        creator_id=row["creator_id"],
        title=row["title"],
        status=SessionStatus(row["status"]),
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        pins=tuple(pins),
        sales=tuple(sales),
    )


async def _details(
    conn: asyncpg.Connection, session_ids: Sequence[str]
) -> tuple[dict[str, list[Pin]], dict[str, list[Sales]]]:
    """Pins and sales of several sessions in two queries (no query per session)."""
    pins: dict[str, list[Pin]] = {sid: [] for sid in session_ids}
    sales: dict[str, list[Sales]] = {sid: [] for sid in session_ids}
    for r in await conn.fetch(
        "SELECT s.session_id, s.product_id, s.pinned_at, p.shop_id, p.title, p.price_minor,"
        " p.currency, p.status, p.version"
        " FROM session_pins s LEFT JOIN products p USING (product_id)"
        " WHERE s.session_id = ANY($1::text[]) ORDER BY s.pinned_at, s.product_id",
        list(session_ids),
    ):
        product = _product(r) if r["title"] is not None else None
        pins[r["session_id"]].append(Pin(r["product_id"], r["pinned_at"], product))
    for r in await conn.fetch(
        "SELECT * FROM session_sales WHERE session_id = ANY($1::text[]) ORDER BY currency",
        list(session_ids),
    ):
        sales[r["session_id"]].append(
            Sales(
                currency=r["currency"],
                orders=r["orders"],
                gross=Money(amount_minor=r["gross_minor"], currency=r["currency"]),
                refunded=Money(amount_minor=r["refunded_minor"], currency=r["currency"]),
            )
        )
    return pins, sales


async def get_session(
    conn: asyncpg.Connection, session_id: str, *, for_update: bool = False
) -> Session | None:
    row = await conn.fetchrow(
        "SELECT * FROM sessions WHERE session_id = $1" + (" FOR UPDATE" if for_update else ""),
        session_id,
    )
    if row is None:
        return None
    pins, sales = await _details(conn, [session_id])
    return _session(row, pins[session_id], sales[session_id])


async def list_sessions(
    conn: asyncpg.Connection,
    *,
    creator_id: str | None,
    status: SessionStatus | None,
    limit: int,
) -> list[Session]:
    rows = await conn.fetch(
        "SELECT * FROM sessions"
        " WHERE ($1::text IS NULL OR creator_id = $1) AND ($2::text IS NULL OR status = $2)"
        " ORDER BY started_at DESC, session_id LIMIT $3",
        creator_id,
        status.value if status else None,
        limit,
    )
    ids = [r["session_id"] for r in rows]
    pins, sales = await _details(conn, ids)
    return [_session(r, pins[r["session_id"]], sales[r["session_id"]]) for r in rows]


async def session_exists(conn: asyncpg.Connection, session_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM sessions WHERE session_id = $1", session_id))


# --- sales ----------------------------------------------------------------------------


async def record_sale(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    session_id: str,
    total: Money,
    placed_at: datetime,
) -> bool:
    """Count an order in its session's sales once; False if it was counted already."""
    added = await conn.fetchval(
        "INSERT INTO attributed_orders (order_id, session_id, currency, total_minor, placed_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        order_id,
        session_id,
        total.currency,
        total.amount_minor,
        placed_at,
    )
    if not added:
        return False
    await conn.execute(
        "INSERT INTO session_sales AS s (session_id, currency, orders, gross_minor)"
        " VALUES ($1, $2, 1, $3)"
        " ON CONFLICT (session_id, currency) DO UPDATE"
        " SET orders = s.orders + 1, gross_minor = s.gross_minor + EXCLUDED.gross_minor",
        session_id,
        total.currency,
        total.amount_minor,
    )
    return True


async def attributed_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The session-attributed order, row-locked so concurrent refunds apply one at a time."""
    return await conn.fetchrow(
        "SELECT * FROM attributed_orders WHERE order_id = $1 FOR UPDATE", order_id
    )


async def record_refund(
    conn: asyncpg.Connection, *, order_id: str, session_id: str, currency: str, delta_minor: int
) -> None:
    await conn.execute(
        "UPDATE attributed_orders SET refunded_minor = refunded_minor + $2 WHERE order_id = $1",
        order_id,
        delta_minor,
    )
    await conn.execute(
        "UPDATE session_sales SET refunded_minor = refunded_minor + $3"
        " WHERE session_id = $1 AND currency = $2",
        session_id,
        currency,
        delta_minor,
    )
