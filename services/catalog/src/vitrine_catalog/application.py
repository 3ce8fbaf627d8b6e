"""Catalog use cases: what the HTTP routes and event handlers ask the catalog to do.

Each use case runs its database writes and the events they announce in one transaction
(the outbox), so an event is published if and only if its change committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import asyncpg
import numpy as np

from vitrine_catalog import metrics
from vitrine_catalog.adapters import repository as repo
from vitrine_catalog.adapters.embedder import (
    ImageEmbedder,
    InvalidImageError,
    decode_image,
    rotations_of,
)
from vitrine_catalog.adapters.vector_index import PayloadValue, VectorIndex, VectorPoint
from vitrine_catalog.domain.matching import (
    ImageHit,
    Judgement,
    MatchDecision,
    MatchVerifier,
    TrackRef,
    candidates,
    crop_scores,
    judge,
    mean_scores,
    short_track_handicap,
    verify,
)
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
from vitrine_runtime.logging import get_logger
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

log = get_logger(__name__)

# Payload key naming the embedding model of a vector; vectors stored before it existed
# were all made by LEGACY_MODEL.
MODEL = "model"
LEGACY_MODEL = "efficientnet-lite0-imagenet@224"
_CROP_IDS = uuid.UUID("6f1d4a52-3f0e-4c39-9a57-3c1f27c2b0de")


def studio_point_id(image_id: uuid.UUID | str, turn: int) -> str:
    """Id of a product image's view turned ``turn`` degrees: the image's own id for the
    shot as it is (so ids stored before turned views existed stay valid), a stable one
    derived from it for every other turn."""
    return str(image_id) if turn == 0 else str(uuid.uuid5(uuid.UUID(str(image_id)), f"turn:{turn}"))


def crop_point_id(track: TrackRef, n: int) -> str:
    """Stable id of a track's n-th kept crop: a redelivered track overwrites its points."""
    return str(uuid.uuid5(_CROP_IDS, f"{track.video_id}\x00{track.track_id}\x00{n}"))


def _track_payload(track: TrackRef) -> dict[str, PayloadValue]:
    return {
        "video_id": track.video_id,
        "track_id": track.track_id,
        "creator_id": track.creator_id,
        "first_seen_ms": track.first_seen_ms,
        "last_seen_ms": track.last_seen_ms,
    }


def _track_from_payload(payload: dict[str, object]) -> TrackRef:
    return TrackRef(
        str(payload["video_id"]),
        str(payload["track_id"]),
        str(payload["creator_id"]),
        int(payload["first_seen_ms"]),  # type: ignore[call-overload]
        int(payload["last_seen_ms"]),  # type: ignore[call-overload]
    )


@dataclass
class Catalog:
    db: Database
    media: MediaStore
    embedder: ImageEmbedder
    index: VectorIndex  # product images, one point per view (see studio_point_id)
    track_crops: VectorIndex  # crops of tracks that matched nothing, for re-matching
    settings: CatalogSettings
    envelope: EnvelopeFactory
    # MATCH_RULE=verifier: tags are the verifier's call; None: threshold, margin and the
    # short-track penalty decide.
    verifier: MatchVerifier | None = None

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
            views = await asyncio.to_thread(self.embedder.embed_studio_views, [image])
        except InvalidImageError as exc:
            raise InvalidRequestError(str(exc)) from exc
        image_id = uuid.uuid4()
        extension = {"image/png": "png", "image/webp": "webp"}.get(content_type, "jpg")
        uri = await self.media.put(
            f"products/{product_id}/{image_id}.{extension}", image, content_type
        )
        # The vectors go in first: should the transaction below fail, stray points name an
        # existing product, which is harmless; the reverse would not be.
        await self.index.upsert(self._image_points(image_id, product_id, product.shop_id, views[0]))
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

    def _image_points(
        self, image_id: uuid.UUID | str, product_id: str, shop_id: str, views: np.ndarray
    ) -> list[VectorPoint]:
        """One index point per view of a product image (see ``embed_studio_views``)."""
        payload: dict[str, PayloadValue] = {
            "product_id": product_id,
            "shop_id": shop_id,
            "image_id": str(image_id),
            MODEL: self.embedder.model_version,
        }
        return [
            VectorPoint(studio_point_id(image_id, turn), vector, {**payload, "turn": turn})
            for turn, vector in zip(self.embedder.studio_rotations, views, strict=True)
        ]

    def _view_ids(self, image_ids: Sequence[uuid.UUID | str]) -> list[str]:
        """The index points of every view of these images under the current rotations."""
        turns = self.embedder.studio_rotations
        return [studio_point_id(i, turn) for i in image_ids for turn in turns]

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
        """Match one tracked object against the catalog; tag the video if convincing.

        A track that matches nothing keeps its crop vectors in the track-crops collection,
        so that a product added later can still claim it (:meth:`rematch_product`).
        """
        crops = sorted(track.crops, key=lambda c: c.quality, reverse=True)
        crops = crops[: self.settings.max_crops_per_track]
        try:
            blobs = [await self.media.get(c.uri, self.settings.max_image_bytes) for c in crops]
            vectors = await asyncio.to_thread(self.embedder.embed_bytes, blobs, view="crop")
        except (MediaRefusedError, MediaNotFoundError, InvalidImageError) as exc:
            raise PermanentError(f"track {track.track_id}: {exc}") from exc

        ref = TrackRef(
            track.video_id,
            track.track_id,
            track.creator_id,
            track.first_seen_ms,
            track.last_seen_ms,
        )
        judgement = await self._judge(conn, vectors)
        decision = judgement.decision
        if decision is None:
            # Before the row that says they exist; the upsert is idempotent on redelivery.
            await self._keep_crops(ref, vectors)
        await repo.record_track(
            conn,
            video_id=track.video_id,
            track_id=track.track_id,
            creator_id=track.creator_id,
            label=track.label,
            first_seen_ms=track.first_seen_ms,
            last_seen_ms=track.last_seen_ms,
            crop_uris=[c.uri for c in track.crops],
            judgement=judgement,
            embedding_model=None if decision else self.embedder.crop_model_version,
        )
        metrics.MATCH_DECISIONS.labels("matched" if decision else "no_match").inc()
        if judgement.confidence is not None:
            metrics.MATCH_CONFIDENCE.observe(judgement.confidence)
        if decision is not None:
            metrics.MATCH_SCORE.observe(decision.score)
            await self._tag(conn, ref, decision)
        return decision

    async def rematch_product(
        self, conn: asyncpg.Connection, product_id: str
    ) -> list[tuple[TrackRef, MatchDecision]]:
        """Judge again the untagged tracks that look like ``product_id``'s images.

        The product's image vectors are searched against the kept crop vectors (no crop is
        embedded again); each track with a crop at least as close as the score threshold
        (the least a matching track's best crop can score) is judged with the same rule
        as a new track, against the whole catalog. Returns the new tags.
        """
        product = await repo.get_product(conn, product_id)
        if product is None or product.status is not ProductStatus.ACTIVE:
            return []
        await self._forget_tagged_crops(conn)
        model, crop_model = self.embedder.model_version, self.embedder.crop_model_version
        image_vectors = await self.index.vectors(
            self._view_ids(await repo.product_image_ids(conn, product_id, model))
        )
        if not image_vectors:
            return []
        limit = self.settings.rematch_candidates
        hit_lists = await self.track_crops.search_batch(
            list(image_vectors.values()), limit, score_threshold=self.settings.match_score_threshold
        )
        if any(len(hits) == limit for hits in hit_lists):
            log.warning("rematch_candidates_saturated", product_id=product_id, limit=limit)
        candidates: dict[tuple[str, str], TrackRef] = {}
        crop_counts: dict[tuple[str, str], int] = {}
        for hits in hit_lists:
            for hit in hits:
                if hit.payload.get(MODEL) != crop_model:
                    continue
                ref = _track_from_payload(hit.payload)
                candidates.setdefault(ref.key, ref)
                crop_counts[ref.key] = int(hit.payload["crops"])
        already = await repo.tagged_tracks(conn, list(candidates))
        tagged: list[tuple[TrackRef, MatchDecision]] = []
        for key, ref in sorted(candidates.items()):
            if key in already:
                continue
            stored = await self.track_crops.vectors(
                [crop_point_id(ref, n) for n in range(crop_counts[key])]
            )
            if not stored:
                continue
            judgement = await self._judge(conn, np.stack(list(stored.values())))
            decision = judgement.decision
            await repo.rejudged_track(conn, *key, judgement, crop_model)
            metrics.REMATCH_DECISIONS.labels("matched" if decision else "no_match").inc()
            if decision is not None and await self._tag(conn, ref, decision):
                tagged.append((ref, decision))
        return tagged

    async def _judge(self, conn: asyncpg.Connection, vectors: np.ndarray) -> Judgement:
        """The matcher's view of a track's crop vectors: the index proposes products, each
        active one is then scored exactly against every view of its images."""
        proposed = candidates(await self._search(vectors))
        image_ids = await repo.active_product_images(
            conn, sorted(proposed), self.embedder.model_version
        )
        views = {product_id: self._view_ids(ids) for product_id, ids in image_ids.items()}
        stored = await self.index.vectors([i for ids in views.values() for i in ids])
        images = {
            product_id: np.stack([stored[i] for i in ids if i in stored])
            for product_id, ids in views.items()
            if any(i in stored for i in ids)
        }
        per_crop = crop_scores(vectors, images)
        if self.verifier is not None:
            return verify(per_crop, proposed, self.verifier)
        return judge(
            mean_scores(per_crop),
            proposed,
            threshold=self.settings.match_score_threshold,
            margin=self.settings.match_margin,
            crops=len(vectors),
            short_track_penalty=self.settings.match_short_track_penalty,
            full_track_crops=self.settings.max_crops_per_track,
        )

    def short_track_handicap(self, crops: int | None) -> float:
        """What a track judged on ``crops`` crops must score above the threshold (None: a
        track judged before crop counts were kept, taken as a full one)."""
        if crops is None:
            return 0.0
        handicap = short_track_handicap(
            crops,
            short_track_penalty=self.settings.match_short_track_penalty,
            full_track_crops=self.settings.max_crops_per_track,
        )
        return round(handicap, 6)

    async def _tag(self, conn: asyncpg.Connection, ref: TrackRef, decision: MatchDecision) -> bool:
        """Store the tag and announce it; False if the track already had one."""
        tagged = await repo.upsert_tag(
            conn,
            video_id=ref.video_id,
            track_id=ref.track_id,
            product_id=decision.product_id,
            shop_id=decision.shop_id,
            creator_id=ref.creator_id,
            score=decision.score,
            first_seen_ms=ref.first_seen_ms,
            last_seen_ms=ref.last_seen_ms,
        )
        if tagged:
            await enqueue(
                conn,
                self.envelope(
                    ProductMatched(
                        video_id=ref.video_id,
                        creator_id=ref.creator_id,
                        track_id=ref.track_id,
                        product_id=decision.product_id,
                        shop_id=decision.shop_id,
                        score=round(decision.score, 6),
                        first_seen_ms=ref.first_seen_ms,
                        last_seen_ms=ref.last_seen_ms,
                    )
                ),
            )
        return tagged

    async def _search(self, vectors: np.ndarray) -> list[list[ImageHit]]:
        results = await self.index.search_batch(list(vectors), self.settings.match_candidates)
        model = self.embedder.model_version
        hits_per_crop: list[list[ImageHit]] = []
        for hits in results:
            # A vector of another model is not comparable: skip it until it is re-embedded.
            fresh = [h for h in hits if h.payload.get(MODEL, LEGACY_MODEL) == model]
            if len(fresh) < len(hits):
                metrics.STALE_VECTOR_HITS.inc(len(hits) - len(fresh))
            hits_per_crop.append(
                [
                    ImageHit(str(h.payload["product_id"]), str(h.payload["shop_id"]), h.score)
                    for h in fresh
                ]
            )
        return hits_per_crop

    async def _keep_crops(self, ref: TrackRef, vectors: np.ndarray) -> None:
        payload = {
            **_track_payload(ref),
            "crops": len(vectors),
            MODEL: self.embedder.crop_model_version,
        }
        await self.track_crops.upsert(
            [
                VectorPoint(crop_point_id(ref, n), vector, {**payload, "crop": n})
                for n, vector in enumerate(vectors)
            ]
        )

    async def _forget_tagged_crops(self, conn: asyncpg.Connection) -> None:
        """Drop the kept crops of tracks tagged since (they need no re-matching)."""
        rows = await conn.fetch(
            "SELECT k.video_id, k.track_id, cardinality(k.crop_uris) AS crops FROM video_tracks k"
            " JOIN video_tags t USING (video_id, track_id) WHERE k.embedding_model IS NOT NULL"
        )
        if not rows:
            return
        refs = [TrackRef(r["video_id"], r["track_id"], "", 0, 0) for r in rows]
        limit = self.settings.max_crops_per_track
        await self.track_crops.delete(
            [
                crop_point_id(ref, n)
                for ref, row in zip(refs, rows, strict=True)
                for n in range(min(row["crops"], limit))
            ]
        )
        await conn.execute(
            "UPDATE video_tracks k SET embedding_model = NULL FROM video_tags t"
            " WHERE t.video_id = k.video_id AND t.track_id = k.track_id"
            " AND k.embedding_model IS NOT NULL"
        )

    # --- model changes ------------------------------------------------------------------

    async def reembed_stale(self, batch: int = 32) -> tuple[int, int]:
        """Embed again what was embedded by another model version: product images, and the
        kept crops of untagged tracks (also those judged before re-matching existed).

        Until then such vectors are ignored (never compared with this model's), so tracks
        judged meanwhile may have missed their product: the products embedded again are
        re-matched at the end. Runs in the background after start; returns (images,
        tracks) embedded again.
        """
        model = self.embedder.model_version
        images = tracks = 0
        products: set[str] = set()
        while True:
            async with self.db.pool.acquire() as conn:
                rows = await repo.images_not_embedded_with(conn, model, batch)
            if not rows:
                break
            readable, unreadable, blobs = [], [], []
            for row in rows:
                try:
                    blob = await self.media.get(row["media_uri"], self.settings.max_image_bytes)
                    decode_image(blob)  # one bad image must not fail the whole batch
                except (MediaRefusedError, MediaNotFoundError, InvalidImageError) as exc:
                    log.warning(
                        "image_not_reembedded", image_id=str(row["image_id"]), error=str(exc)
                    )
                    unreadable.append(row)
                    continue
                readable.append(row)
                blobs.append(blob)
            views = await asyncio.to_thread(self.embedder.embed_studio_views, blobs)
            await self.index.upsert(
                [
                    point
                    for row, vectors in zip(readable, views, strict=True)
                    for point in self._image_points(
                        row["image_id"], row["product_id"], row["shop_id"], vectors
                    )
                ]
            )
            # Points of turns the old model made and this one does not would linger, fill
            # crops' hits and never be compared: they go, with every view of an unreadable image.
            await self.index.delete(
                [
                    studio_point_id(row["image_id"], turn)
                    for row in readable
                    for turn in rotations_of(row["embedding_model"])
                    if turn not in self.embedder.studio_rotations
                ]
                + [
                    studio_point_id(row["image_id"], turn)
                    for row in unreadable
                    for turn in {
                        *rotations_of(row["embedding_model"]),
                        *self.embedder.studio_rotations,
                    }
                ]
            )
            async with self.db.transaction() as conn:
                await repo.set_image_model(conn, [r["image_id"] for r in readable], model)
                await repo.set_image_model(conn, [r["image_id"] for r in unreadable], "")
            images += len(readable)
            products.update(r["product_id"] for r in readable)

        after = ("", "")
        while True:
            async with self.db.pool.acquire() as conn:
                rows = await repo.untagged_tracks_not_embedded_with(
                    conn, self.embedder.crop_model_version, batch, after
                )
            if not rows:
                break
            after = (rows[-1]["video_id"], rows[-1]["track_id"])
            for row in rows:
                uris = row["crop_uris"][: self.settings.max_crops_per_track]
                try:
                    blobs = [await self.media.get(u, self.settings.max_image_bytes) for u in uris]
                    vectors = await asyncio.to_thread(self.embedder.embed_bytes, blobs, view="crop")
                except (MediaRefusedError, MediaNotFoundError, InvalidImageError) as exc:
                    log.warning("track_not_reembedded", track_id=row["track_id"], error=str(exc))
                    continue
                ref = TrackRef(
                    row["video_id"],
                    row["track_id"],
                    row["creator_id"],
                    row["first_seen_ms"],
                    row["last_seen_ms"],
                )
                await self._keep_crops(ref, vectors)
                async with self.db.transaction() as conn:
                    await repo.set_track_model(conn, *ref.key, self.embedder.crop_model_version)
                tracks += 1

        for product_id in sorted(products):
            async with self.db.transaction() as conn:
                await self.rematch_product(conn, product_id)
        return images, tracks

    async def video_tags(self, video_id: str) -> list[asyncpg.Record]:
        async with self.db.pool.acquire() as conn:
            return await repo.video_tags(conn, video_id)

    async def video_tracks(self, video_id: str) -> list[asyncpg.Record]:
        async with self.db.pool.acquire() as conn:
            return await repo.video_tracks(conn, video_id)
