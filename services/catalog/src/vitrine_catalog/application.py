"""Catalog use cases: what the HTTP routes and event handlers ask the catalog to do.

Each use case runs its database writes and the events they announce in one transaction
(the outbox), so an event is published if and only if its change committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import asyncpg
import numpy as np

from vitrine_catalog import metrics
from vitrine_catalog.adapters import repository as repo
from vitrine_catalog.adapters.embedder import ImageEmbedder, InvalidImageError
from vitrine_catalog.adapters.vector_index import VectorIndex, VectorPoint
from vitrine_catalog.domain.matching import ImageHit, MatchDecision, decide
from vitrine_catalog.domain.products import (
    Product,
    ProductChange,
    Shop,
    apply_change,
    validate_terms,
)
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.consumer import PermanentError
from vitrine_runtime.db import Database
from vitrine_runtime.errors import InvalidRequestError, NotFoundError
from vitrine_runtime.media import MediaNotFoundError, MediaRefusedError, MediaStore
from vitrine_runtime.outbox import enqueue
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import (
    ObjectsDetected,
    ProductMatched,
    ProductStatus,
    ProductUpserted,
    ShopKind,
)
from vitrine_schemas.money import Money

EnvelopeFactory = Callable[[Event], Envelope[Event]]


@dataclass
class Catalog:
    db: Database
    media: MediaStore
    embedder: ImageEmbedder
    index: VectorIndex
    settings: CatalogSettings
    envelope: EnvelopeFactory

    # --- shops and products -------------------------------------------------------------

    async def create_shop(self, name: str, kind: ShopKind, seller_id: str) -> Shop:
        shop = Shop(f"shop_{uuid.uuid4().hex[:16]}", name, kind, seller_id)
        async with self.db.transaction() as conn:
            await repo.insert_shop(conn, shop)
        return shop

    async def shop(self, shop_id: str) -> Shop:
        async with self.db.pool.acquire() as conn:
            shop = await repo.get_shop(conn, shop_id)
        if shop is None:
            raise NotFoundError(f"shop {shop_id} does not exist")
        return shop

    async def create_product(
        self, shop_id: str, title: str, price: Money, stock: int, commission_bps: int
    ) -> Product:
        validate_terms(price, stock, commission_bps)
        product = Product(
            product_id=f"prod_{uuid.uuid4().hex[:16]}",
            shop_id=shop_id,
            title=title,
            price=price,
            stock=stock,
            stock_version=1,
            commission_bps=commission_bps,
            status=ProductStatus.ACTIVE,
            version=1,
            image_count=0,
        )
        async with self.db.transaction() as conn:
            shop = await repo.get_shop(conn, shop_id)
            if shop is None:
                raise NotFoundError(f"shop {shop_id} does not exist")
            await repo.insert_product(conn, product)
            await self._announce(conn, shop, product)
        return product

    async def product(self, product_id: str) -> Product:
        async with self.db.pool.acquire() as conn:
            product = await repo.get_product(conn, product_id)
        if product is None:
            raise NotFoundError(f"product {product_id} does not exist")
        return product

    async def products(self, shop_id: str) -> list[Product]:
        await self.shop(shop_id)
        async with self.db.pool.acquire() as conn:
            return await repo.list_products(conn, shop_id)

    async def change_product(self, product_id: str, change: ProductChange) -> Product:
        async with self.db.transaction() as conn:
            current = await repo.get_product(conn, product_id, for_update=True)
            if current is None:
                raise NotFoundError(f"product {product_id} does not exist")
            updated = apply_change(current, change)
            if updated is not current:
                await repo.update_product(conn, updated)
                shop = await repo.get_shop(conn, updated.shop_id)
                assert shop is not None
                await self._announce(conn, shop, updated)
        return updated

    async def add_image(self, product_id: str, image: bytes, content_type: str) -> uuid.UUID:
        """Store, embed and index one product image; the product's version goes up."""
        product = await self.product(product_id)
        if len(image) > self.settings.max_image_bytes:
            raise InvalidRequestError(f"image larger than {self.settings.max_image_bytes} bytes")
        try:
            vectors = await asyncio.to_thread(self.embedder.embed_bytes, [image])
        except InvalidImageError as exc:
            raise InvalidRequestError(str(exc)) from exc
        image_id = uuid.uuid4()
        extension = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
        uri = await self.media.put(
            f"products/{product_id}/{image_id}.{extension}", image, content_type
        )
        # The vector goes in first: should the transaction below fail, a stray vector
        # points at an existing product, which is harmless; the reverse would not be.
        await self.index.upsert(
            [
                VectorPoint(
                    str(image_id),
                    vectors[0],
                    {"product_id": product_id, "shop_id": product.shop_id},
                )
            ]
        )
        async with self.db.transaction() as conn:
            await repo.insert_image(conn, image_id, product_id, uri, self.embedder.model_version)
            current = await repo.get_product(conn, product_id, for_update=True)
            assert current is not None
            bumped = replace(current, version=current.version + 1)
            await repo.update_product(conn, bumped)
            shop = await repo.get_shop(conn, product.shop_id)
            assert shop is not None
            await self._announce(conn, shop, bumped)
        return image_id

    async def _announce(self, conn: asyncpg.Connection, shop: Shop, product: Product) -> None:
        image_count = await conn.fetchval(
            "SELECT count(*) FROM product_images WHERE product_id = $1", product.product_id
        )
        await enqueue(
            conn,
            self.envelope(
                ProductUpserted(
                    product_id=product.product_id,
                    shop_id=shop.shop_id,
                    seller_id=shop.seller_id,
                    shop_kind=shop.kind,
                    title=product.title,
                    price=product.price,
                    stock=product.stock,
                    stock_version=product.stock_version,
                    commission_bps=product.commission_bps,
                    status=product.status,
                    version=product.version,
                    image_count=image_count,
                )
            ),
        )

    # --- matching -----------------------------------------------------------------------

    async def match_track(
        self, conn: asyncpg.Connection, track: ObjectsDetected
    ) -> MatchDecision | None:
        """Match one tracked object against the catalog; tag the video if convincing."""
        crops = sorted(track.crops, key=lambda c: c.quality, reverse=True)
        crops = crops[: self.settings.max_crops_per_track]
        try:
            blobs = [await self.media.get(c.uri, self.settings.max_image_bytes) for c in crops]
            vectors = await asyncio.to_thread(self.embedder.embed_bytes, blobs)
        except (MediaRefusedError, MediaNotFoundError, InvalidImageError) as exc:
            raise PermanentError(f"track {track.track_id}: {exc}") from exc

        hits_per_crop = await self._search(vectors)
        live = await repo.active_products(
            conn, sorted({h.product_id for hits in hits_per_crop for h in hits})
        )
        hits_per_crop = [[h for h in hits if h.product_id in live] for hits in hits_per_crop]
        decision = decide(
            hits_per_crop,
            threshold=self.settings.match_score_threshold,
            margin=self.settings.match_margin,
        )
        await repo.record_track(
            conn,
            video_id=track.video_id,
            track_id=track.track_id,
            creator_id=track.creator_id,
            label=track.label,
            first_seen_ms=track.first_seen_ms,
            last_seen_ms=track.last_seen_ms,
            crop_uris=[c.uri for c in track.crops],
            best_score=decision.score if decision else None,
        )
        metrics.MATCH_DECISIONS.labels("matched" if decision else "no_match").inc()
        if decision is None:
            return None
        metrics.MATCH_SCORE.observe(decision.score)
        tagged = await repo.upsert_tag(
            conn,
            video_id=track.video_id,
            track_id=track.track_id,
            product_id=decision.product_id,
            shop_id=decision.shop_id,
            creator_id=track.creator_id,
            score=decision.score,
            first_seen_ms=track.first_seen_ms,
            last_seen_ms=track.last_seen_ms,
        )
        if tagged:
            await enqueue(
                conn,
                self.envelope(
                    ProductMatched(
                        video_id=track.video_id,
                        creator_id=track.creator_id,
                        track_id=track.track_id,
                        product_id=decision.product_id,
                        shop_id=decision.shop_id,
                        score=round(decision.score, 6),
                        first_seen_ms=track.first_seen_ms,
                        last_seen_ms=track.last_seen_ms,
                    )
                ),
            )
        return decision

    async def _search(self, vectors: np.ndarray) -> list[list[ImageHit]]:
        results = await asyncio.gather(
            *(self.index.search(v, self.settings.match_candidates) for v in vectors)
        )
        return [
            [
                ImageHit(str(h.payload["product_id"]), str(h.payload["shop_id"]), h.score)
                for h in hits
            ]
            for hits in results
        ]

    async def video_tags(self, video_id: str) -> list[asyncpg.Record]:
        async with self.db.pool.acquire() as conn:
            return await repo.video_tags(conn, video_id)
