"""Checkout's SQL (asyncpg, the service's own schema). Every function runs on the caller's
connection, so the use case decides what shares one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from vitrine_checkout.domain.model import (
    LiveSession,
    Order,
    OrderLine,
    Product,
    Refund,
    SessionStatus,
)
from vitrine_schemas.events import (
    Attribution,
    AttributionSource,
    ProductStatus,
    ProductUpserted,
    ShopKind,
)
from vitrine_schemas.money import Money

# --- products -------------------------------------------------------------------------


def _product(row: asyncpg.Record) -> Product:
    return Product(
        product_id=row["product_id"],
        shop_id=row["shop_id"],
        seller_id=row["seller_id"],
        shop_kind=ShopKind(row["shop_kind"]),
        title=row["title"],
        unit_price=Money(amount_minor=row["price_minor"], currency=row["currency"]),
        commission_bps=row["commission_bps"],
        status=ProductStatus(row["status"]),
        version=row["version"],
        available=row["available"],
        stock_version=row["stock_version"],
    )


async def upsert_product(conn: asyncpg.Connection, event: ProductUpserted) -> bool:
    """Apply a catalog snapshot if it is newer than the stored one; True if it changed.

    Only a newer `version` touches the row, and only a newer `stock_version` resets
    `available`: a price edit carries the old stock figure, which must not undo sales.
    """
    changed = await conn.fetchval(
        """
        INSERT INTO products AS p (product_id, shop_id, seller_id, shop_kind, title,
            price_minor, currency, commission_bps, status, version, available, stock_version)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        ON CONFLICT (product_id) DO UPDATE SET
            shop_id = EXCLUDED.shop_id,
            seller_id = EXCLUDED.seller_id,
            shop_kind = EXCLUDED.shop_kind,
            title = EXCLUDED.title,
            price_minor = EXCLUDED.price_minor,
            currency = EXCLUDED.currency,
            commission_bps = EXCLUDED.commission_bps,
            status = EXCLUDED.status,
            version = EXCLUDED.version,
            available = CASE WHEN EXCLUDED.stock_version > p.stock_version
                             THEN EXCLUDED.available ELSE p.available END,
            stock_version = GREATEST(p.stock_version, EXCLUDED.stock_version),
            updated_at = now()
        WHERE EXCLUDED.version > p.version
        RETURNING true
        """,
        event.product_id,
        event.shop_id,
        event.seller_id,
        event.shop_kind.value,
        event.title,
        event.price.amount_minor,
        event.price.currency,
        event.commission_bps,
        event.status.value,
        event.version,
        event.stock,
        event.stock_version,
    )
    return bool(changed)


async def get_product(conn: asyncpg.Connection, product_id: str) -> Product | None:
    row = await conn.fetchrow("SELECT * FROM products WHERE product_id = $1", product_id)
    return _product(row) if row else None


async def lock_products(conn: asyncpg.Connection, product_ids: Sequence[str]) -> dict[str, Product]:
    """Read and row-lock the products, in product_id order (the lock order of every order
    transaction, so concurrent orders queue rather than deadlock)."""
    rows = await conn.fetch(
        "SELECT * FROM products WHERE product_id = ANY($1::text[]) ORDER BY product_id FOR UPDATE",
        sorted(set(product_ids)),
    )
    return {row["product_id"]: _product(row) for row in rows}


async def reserve_stock(conn: asyncpg.Connection, product_id: str, quantity: int) -> bool:
    """Take `quantity` units if that many are left; False (and nothing taken) otherwise."""
    taken = await conn.fetchval(
        "UPDATE products SET available = available - $2"
        " WHERE product_id = $1 AND available >= $2 RETURNING true",
        product_id,
        quantity,
    )
    return bool(taken)


async def reserve_stock_many(conn: asyncpg.Connection, quantities: dict[str, int]) -> bool:
    """`reserve_stock` for several products in one statement; False (and the caller must
    roll back) unless every one of them had enough left."""
    taken = await conn.fetchval(
        "WITH taken AS (UPDATE products p SET available = p.available - q.quantity"
        " FROM unnest($1::text[], $2::int[]) AS q(product_id, quantity)"
        " WHERE p.product_id = q.product_id AND p.available >= q.quantity RETURNING 1)"
        " SELECT count(*) FROM taken",
        list(quantities),
        list(quantities.values()),
    )
    return bool(taken == len(quantities))


# --- live sessions --------------------------------------------------------------------


async def upsert_session_started(
    conn: asyncpg.Connection, session_id: str, creator_id: str, title: str, started_at: datetime
) -> None:
    # An ended session never goes back to live: `ended` is final, whatever arrives late.
    await conn.execute(
        "INSERT INTO live_sessions (session_id, creator_id, title, status, started_at)"
        " VALUES ($1, $2, $3, 'live', $4)"
        " ON CONFLICT (session_id) DO UPDATE SET title = EXCLUDED.title,"
        " started_at = EXCLUDED.started_at",
        session_id,
        creator_id,
        title,
        started_at,
    )


async def ensure_session(conn: asyncpg.Connection, session_id: str, creator_id: str) -> None:
    """A pin implies a session that was live; keeps the projection whole if live.started
    was lost to topic retention before this consumer first read it."""
    await conn.execute(
        "INSERT INTO live_sessions (session_id, creator_id, status) VALUES ($1, $2, 'live')"
        " ON CONFLICT (session_id) DO NOTHING",
        session_id,
        creator_id,
    )


async def mark_session_ended(
    conn: asyncpg.Connection, session_id: str, creator_id: str, ended_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO live_sessions (session_id, creator_id, status, ended_at)"
        " VALUES ($1, $2, 'ended', $3)"
        " ON CONFLICT (session_id) DO UPDATE SET status = 'ended',"
        " ended_at = COALESCE(live_sessions.ended_at, EXCLUDED.ended_at)",
        session_id,
        creator_id,
        ended_at,
    )


async def set_pin(
    conn: asyncpg.Connection, session_id: str, product_id: str, pinned: bool, at: datetime
) -> None:
    # Last writer by event time wins, so a redelivered old pin cannot undo a newer unpin.
    await conn.execute(
        "INSERT INTO live_session_pins AS s (session_id, product_id, pinned, changed_at)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (session_id, product_id) DO UPDATE SET pinned = EXCLUDED.pinned,"
        " changed_at = EXCLUDED.changed_at WHERE EXCLUDED.changed_at >= s.changed_at",
        session_id,
        product_id,
        pinned,
        at,
    )


async def get_session(conn: asyncpg.Connection, session_id: str) -> LiveSession | None:
    row = await conn.fetchrow(
        "SELECT s.session_id, s.creator_id, s.status,"
        " COALESCE(array_agg(p.product_id ORDER BY p.product_id)"
        "          FILTER (WHERE p.pinned), '{}') AS pinned"
        " FROM live_sessions s"
        " LEFT JOIN live_session_pins p ON p.session_id = s.session_id"
        " WHERE s.session_id = $1"
        " GROUP BY s.session_id",
        session_id,
    )
    if row is None:
        return None
    return LiveSession(
        session_id=row["session_id"],
        creator_id=row["creator_id"],
        status=SessionStatus(row["status"]),
        pinned_product_ids=frozenset(row["pinned"]),
    )


# --- idempotency ----------------------------------------------------------------------


async def claim_idempotency_key(
    conn: asyncpg.Connection, operation: str, key: str, request_hash: str, resource_id: str
) -> tuple[str, str] | None:
    """Record the key for this request; None if it is new, else the (hash, resource id) the
    key already stands for.

    A concurrent request with the same key blocks on the unique index until the first one
    commits (then it sees the key) or rolls back (then it claims the key itself).
    """
    claimed = await conn.fetchval(
        "INSERT INTO idempotency_keys (operation, key, request_hash, resource_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
        operation,
        key,
        request_hash,
        resource_id,
    )
    if claimed:
        return None
    row = await conn.fetchrow(
        "SELECT request_hash, resource_id FROM idempotency_keys WHERE operation = $1 AND key = $2",
        operation,
        key,
    )
    assert row is not None, "a key that conflicts on insert exists"
    return row["request_hash"], row["resource_id"]


async def claim_idempotency_keys(
    conn: asyncpg.Connection, operation: str, claims: Sequence[tuple[str, str, str]]
) -> set[str]:
    """`claim_idempotency_key` for many (key, request hash, resource id) at once; the keys
    claimed here. Keys already taken are not touched (the caller replays those)."""
    rows = await conn.fetch(
        "INSERT INTO idempotency_keys (operation, key, request_hash, resource_id)"
        " SELECT $1, c.key, c.request_hash, c.resource_id"
        " FROM unnest($2::text[], $3::text[], $4::text[]) AS c(key, request_hash, resource_id)"
        " ON CONFLICT DO NOTHING RETURNING key",
        operation,
        [key for key, _, _ in claims],
        [request_hash for _, request_hash, _ in claims],
        [resource_id for _, _, resource_id in claims],
    )
    return {row["key"] for row in rows}


async def release_idempotency_keys(
    conn: asyncpg.Connection, operation: str, keys: Sequence[str]
) -> None:
    """Give back keys claimed in this transaction for requests that were refused."""
    if keys:
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE operation = $1 AND key = ANY($2::text[])",
            operation,
            list(keys),
        )


# --- orders ---------------------------------------------------------------------------


async def insert_order(conn: asyncpg.Connection, order: Order) -> None:
    """The order and its lines in one statement (one round trip on the hot path)."""
    await insert_orders(conn, [order])


async def insert_orders(conn: asyncpg.Connection, orders: Sequence[Order]) -> None:
    """`insert_order` for many orders, all their lines included, in one statement."""
    lines = [(order, n, line) for order in orders for n, line in enumerate(order.lines, 1)]
    await conn.execute(
        "WITH placed AS (INSERT INTO orders (order_id, buyer_id, shop_id, seller_id, shop_kind,"
        " currency, total_minor, refunded_minor, platform_fee_bps, attribution_source,"
        " creator_id, video_id, live_session_id, placed_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::bigint[], $8::bigint[], $9::int[], $10::text[], $11::text[],"
        " $12::text[], $13::text[], $14::timestamptz[]))"
        " INSERT INTO order_lines (order_id, line_no, product_id, title, quantity,"
        " unit_price_minor, commission_bps)"
        " SELECT * FROM unnest($15::text[], $16::int[], $17::text[], $18::text[], $19::int[],"
        " $20::bigint[], $21::int[])",
        [o.order_id for o in orders],
        [o.buyer_id for o in orders],
        [o.shop_id for o in orders],
        [o.seller_id for o in orders],
        [o.shop_kind.value for o in orders],
        [o.total.currency for o in orders],
        [o.total.amount_minor for o in orders],
        [o.refunded.amount_minor for o in orders],
        [o.platform_fee_bps for o in orders],
        [o.attribution.source.value for o in orders],
        [o.attribution.creator_id for o in orders],
        [o.attribution.video_id for o in orders],
        [o.attribution.live_session_id for o in orders],
        [o.placed_at for o in orders],
        [order.order_id for order, _, _ in lines],
        [n for _, n, _ in lines],
        [line.product_id for _, _, line in lines],
        [line.title for _, _, line in lines],
        [line.quantity for _, _, line in lines],
        [line.unit_price.amount_minor for _, _, line in lines],
        [line.commission_bps for _, _, line in lines],
    )


async def get_order(
    conn: asyncpg.Connection, order_id: str, *, for_update: bool = False
) -> Order | None:
    row = await conn.fetchrow(
        "SELECT * FROM orders WHERE order_id = $1" + (" FOR UPDATE" if for_update else ""),
        order_id,
    )
    if row is None:
        return None
    currency = row["currency"]
    line_rows = await conn.fetch(
        "SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no", order_id
    )
    refund_rows = await conn.fetch(
        "SELECT * FROM refunds WHERE order_id = $1 ORDER BY refunded_total_minor", order_id
    )
    return Order(
        order_id=row["order_id"],
        buyer_id=row["buyer_id"],
        shop_id=row["shop_id"],
        seller_id=row["seller_id"],
        shop_kind=ShopKind(row["shop_kind"]),
        lines=tuple(
            OrderLine(
                product_id=r["product_id"],
                title=r["title"],
                quantity=r["quantity"],
                unit_price=Money(amount_minor=r["unit_price_minor"], currency=currency),
                commission_bps=r["commission_bps"],
            )
            for r in line_rows
        ),
        total=Money(amount_minor=row["total_minor"], currency=currency),
        platform_fee_bps=row["platform_fee_bps"],
        attribution=Attribution(
            source=AttributionSource(row["attribution_source"]),
            creator_id=row["creator_id"],
            video_id=row["video_id"],
            live_session_id=row["live_session_id"],
        ),
        placed_at=row["placed_at"],
        refunded=Money(amount_minor=row["refunded_minor"], currency=currency),
        refunds=tuple(_refund(r, currency) for r in refund_rows),
    )


# --- refunds --------------------------------------------------------------------------


def _refund(row: asyncpg.Record, currency: str) -> Refund:
    return Refund(
        refund_id=row["refund_id"],
        order_id=row["order_id"],
        amount=Money(amount_minor=row["amount_minor"], currency=currency),
        refunded_total=Money(amount_minor=row["refunded_total_minor"], currency=currency),
        reason=row["reason"],
        refunded_at=row["refunded_at"],
    )


async def insert_refund(conn: asyncpg.Connection, refund: Refund) -> None:
    await conn.execute(
        "INSERT INTO refunds (refund_id, order_id, amount_minor, refunded_total_minor, reason,"
        " refunded_at) VALUES ($1, $2, $3, $4, $5, $6)",
        refund.refund_id,
        refund.order_id,
        refund.amount.amount_minor,
        refund.refunded_total.amount_minor,
        refund.reason,
        refund.refunded_at,
    )
    await conn.execute(
        "UPDATE orders SET refunded_minor = $2 WHERE order_id = $1",
        refund.order_id,
        refund.refunded_total.amount_minor,
    )


async def get_refund(conn: asyncpg.Connection, refund_id: str) -> Refund | None:
    row = await conn.fetchrow(
        "SELECT r.*, o.currency FROM refunds r JOIN orders o USING (order_id)"
        " WHERE r.refund_id = $1",
        refund_id,
    )
    return _refund(row, row["currency"]) if row else None
