"""SQL for shops, products, images and video tags (asyncpg, the service's own schema)."""

from __future__ import annotations

import uuid

import asyncpg

from vitrine_catalog.domain.matching import Judgement
from vitrine_catalog.domain.products import Product, Shop
from vitrine_schemas.events import ProductStatus, ShopKind
from vitrine_schemas.money import Money


def _shop(row: asyncpg.Record) -> Shop:
    return Shop(row["shop_id"], row["name"], ShopKind(row["kind"]), row["seller_id"])


def _product(row: asyncpg.Record) -> Product:
    return Product(
        product_id=row["product_id"],
        shop_id=row["shop_id"],
        title=row["title"],
        price=Money(amount_minor=row["price_minor"], currency=row["currency"]),
        stock=row["stock"],
        stock_version=row["stock_version"],
        commission_bps=row["commission_bps"],
        status=ProductStatus(row["status"]),
        version=row["version"],
        image_count=row["image_count"],
    )


_PRODUCT_SELECT = """
    SELECT p.*, (SELECT count(*) FROM product_images i WHERE i.product_id = p.product_id)
           AS image_count
    FROM products p
"""


async def insert_shop(conn: asyncpg.Connection, shop: Shop) -> None:
    await conn.execute(
        "INSERT INTO shops (shop_id, name, kind, seller_id) VALUES ($1, $2, $3, $4)",
        shop.shop_id,
        shop.name,
        shop.kind.value,
        shop.seller_id,
    )


async def get_shop(conn: asyncpg.Connection, shop_id: str) -> Shop | None:
    row = await conn.fetchrow("SELECT * FROM shops WHERE shop_id = $1", shop_id)
    return _shop(row) if row else None


async def insert_product(conn: asyncpg.Connection, product: Product) -> None:
    await conn.execute(
        "INSERT INTO products (product_id, shop_id, title, price_minor, currency, stock,"
        " stock_version, commission_bps, status, version)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        product.product_id,
        product.shop_id,
        product.title,
        product.price.amount_minor,
        product.price.currency,
        product.stock,
        product.stock_version,
        product.commission_bps,
        product.status.value,
        product.version,
    )


async def update_product(conn: asyncpg.Connection, product: Product) -> None:
    await conn.execute(
        "UPDATE products SET title = $2, price_minor = $3, stock = $4, stock_version = $5,"
        " commission_bps = $6, status = $7, version = $8, updated_at = now()"
        " WHERE product_id = $1",
        product.product_id,
        product.title,
        product.price.amount_minor,
        product.stock,
        product.stock_version,
        product.commission_bps,
        product.status.value,
        product.version,
    )


async def get_product(
    conn: asyncpg.Connection, product_id: str, *, for_update: bool = False
) -> Product | None:
    if for_update:
        await conn.execute("SELECT 1 FROM products WHERE product_id = $1 FOR UPDATE", product_id)
    row = await conn.fetchrow(f"{_PRODUCT_SELECT} WHERE p.product_id = $1", product_id)
    return _product(row) if row else None


async def list_products(conn: asyncpg.Connection, shop_id: str) -> list[Product]:
    rows = await conn.fetch(
        f"{_PRODUCT_SELECT} WHERE p.shop_id = $1 ORDER BY p.created_at, p.product_id", shop_id
    )
    return [_product(r) for r in rows]


async def active_product_images(
    conn: asyncpg.Connection, product_ids: list[str], model: str
) -> dict[str, list[str]]:
    """The image ids, embedded with `model`, of those of `product_ids` still on sale."""
    rows = await conn.fetch(
        "SELECT i.product_id, i.image_id FROM product_images i JOIN products p USING (product_id)"
        " WHERE i.product_id = ANY($1::text[]) AND p.status = 'active'"
        " AND i.embedding_model = $2 ORDER BY i.product_id, i.image_id",
        product_ids,
        model,
    )
    images: dict[str, list[str]] = {}
    for row in rows:
        images.setdefault(row["product_id"], []).append(str(row["image_id"]))
    return images


async def insert_image(
    conn: asyncpg.Connection, image_id: uuid.UUID, product_id: str, media_uri: str, model: str
) -> None:
    await conn.execute(
        "INSERT INTO product_images (image_id, product_id, media_uri, embedding_model)"
        " VALUES ($1, $2, $3, $4)",
        image_id,
        product_id,
        media_uri,
        model,
    )


async def record_track(
    conn: asyncpg.Connection,
    *,
    video_id: str,
    track_id: str,
    creator_id: str,
    label: str,
    first_seen_ms: int,
    last_seen_ms: int,
    crop_uris: list[str],
    judgement: Judgement,
    embedding_model: str | None = None,
) -> None:
    """Remember a judged track; ``embedding_model``: its crops' vectors are kept for
    re-matching (None: they are not, e.g. because the track was tagged)."""
    best = judgement.best
    await conn.execute(
        "INSERT INTO video_tracks (video_id, track_id, creator_id, label, first_seen_ms,"
        " last_seen_ms, crop_uris, best_score, best_product_id, runner_up_score,"
        " embedding_model, crops_judged, match_confidence)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (video_id, track_id) DO UPDATE SET best_score = EXCLUDED.best_score,"
        " best_product_id = EXCLUDED.best_product_id,"
        " runner_up_score = EXCLUDED.runner_up_score,"
        " embedding_model = EXCLUDED.embedding_model,"
        " crops_judged = EXCLUDED.crops_judged,"
        " match_confidence = EXCLUDED.match_confidence",
        video_id,
        track_id,
        creator_id,
        label,
        first_seen_ms,
        last_seen_ms,
        crop_uris,
        best.score if best else None,
        best.product_id if best else None,
        best.runner_up_score if best else None,
        embedding_model,
        judgement.crops,
        judgement.confidence,
    )


async def rejudged_track(
    conn: asyncpg.Connection,
    video_id: str,
    track_id: str,
    judgement: Judgement,
    embedding_model: str | None,
) -> None:
    best = judgement.best
    await conn.execute(
        "UPDATE video_tracks SET best_score = $3, best_product_id = $4, runner_up_score = $5,"
        " embedding_model = $6, crops_judged = $7, match_confidence = $8"
        " WHERE video_id = $1 AND track_id = $2",
        video_id,
        track_id,
        best.score if best else None,
        best.product_id if best else None,
        best.runner_up_score if best else None,
        embedding_model,
        judgement.crops,
        judgement.confidence,
    )


async def set_track_model(
    conn: asyncpg.Connection, video_id: str, track_id: str, embedding_model: str
) -> None:
    """The track's kept crop vectors are now of ``embedding_model``."""
    await conn.execute(
        "UPDATE video_tracks SET embedding_model = $3 WHERE video_id = $1 AND track_id = $2",
        video_id,
        track_id,
        embedding_model,
    )


async def tagged_tracks(
    conn: asyncpg.Connection, keys: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT t.video_id, t.track_id FROM video_tags t"
        " JOIN unnest($1::text[], $2::text[]) AS k (video_id, track_id)"
        " ON t.video_id = k.video_id AND t.track_id = k.track_id",
        [video for video, _ in keys],
        [track for _, track in keys],
    )
    return {(r["video_id"], r["track_id"]) for r in rows}


async def untagged_tracks_not_embedded_with(
    conn: asyncpg.Connection, model: str, limit: int, after: tuple[str, str] = ("", "")
) -> list[asyncpg.Record]:
    """Untagged tracks whose crop vectors are missing or of another model, in key order."""
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT k.* FROM video_tracks k"
        " WHERE k.embedding_model IS DISTINCT FROM $1 AND (k.video_id, k.track_id) > ($2, $3)"
        " AND NOT EXISTS (SELECT 1 FROM video_tags t"
        "                 WHERE t.video_id = k.video_id AND t.track_id = k.track_id)"
        " ORDER BY k.video_id, k.track_id LIMIT $4",
        model,
        after[0],
        after[1],
        limit,
    )


async def product_image_ids(conn: asyncpg.Connection, product_id: str, model: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT image_id FROM product_images WHERE product_id = $1 AND embedding_model = $2",
        product_id,
        model,
    )
    return [str(r["image_id"]) for r in rows]


async def images_not_embedded_with(
    conn: asyncpg.Connection, model: str, limit: int
) -> list[asyncpg.Record]:
    """Product images whose vector is of another model ('' marks unreadable images), with
    that model."""
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT i.image_id, i.product_id, i.media_uri, p.shop_id, i.embedding_model"
        " FROM product_images i"
        " JOIN products p USING (product_id)"
        " WHERE i.embedding_model NOT IN ($1, '') ORDER BY i.image_id LIMIT $2",
        model,
        limit,
    )


async def set_image_model(conn: asyncpg.Connection, image_ids: list[uuid.UUID], model: str) -> None:
    await conn.execute(
        "UPDATE product_images SET embedding_model = $2 WHERE image_id = ANY($1::uuid[])",
        image_ids,
        model,
    )


async def upsert_tag(
    conn: asyncpg.Connection,
    *,
    video_id: str,
    track_id: str,
    product_id: str,
    shop_id: str,
    creator_id: str,
    score: float,
    first_seen_ms: int,
    last_seen_ms: int,
) -> bool:
    """Store a tag; False if this track already carries one (redelivery, re-match)."""
    inserted = await conn.fetchval(
        "INSERT INTO video_tags (video_id, track_id, product_id, shop_id, creator_id, score,"
        " first_seen_ms, last_seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (video_id, track_id) DO NOTHING RETURNING true",
        video_id,
        track_id,
        product_id,
        shop_id,
        creator_id,
        score,
        first_seen_ms,
        last_seen_ms,
    )
    return bool(inserted)


async def video_tracks(conn: asyncpg.Connection, video_id: str) -> list[asyncpg.Record]:
    """Every judged track of a video, with the matcher's best guess and its tag if any."""
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT k.track_id, k.label, k.first_seen_ms, k.last_seen_ms, k.best_product_id,"
        " k.best_score, k.runner_up_score, k.crops_judged, k.match_confidence, k.seen_at,"
        " t.product_id AS tagged_product_id"
        " FROM video_tracks k LEFT JOIN video_tags t USING (video_id, track_id)"
        " WHERE k.video_id = $1 ORDER BY k.first_seen_ms, k.track_id",
        video_id,
    )


async def video_tags(conn: asyncpg.Connection, video_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(  # type: ignore[no-any-return]
        "SELECT t.*, p.title, p.price_minor, p.currency, p.status FROM video_tags t"
        " JOIN products p USING (product_id)"
        " WHERE t.video_id = $1 AND p.status = 'active' ORDER BY t.first_seen_ms, t.track_id",
        video_id,
    )
