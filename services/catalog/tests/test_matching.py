"""The matcher with its real parts: the embedding model, the embedded Qdrant engine,
PostgreSQL (the `database` fixture) and a local media store. No broker: the catalog's
own outbox rows are handed to its consumer, as the broker would deliver them."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vitrine_catalog import handlers
from vitrine_catalog.adapters.embedder import ImageEmbedder
from vitrine_catalog.adapters.vector_index import QdrantEdgeIndex, VectorPoint
from vitrine_catalog.adapters.verifier import DEFAULT_VERIFIER, load_verifier
from vitrine_catalog.app import load_embedder
from vitrine_catalog.application import Catalog, crop_point_id, studio_point_id
from vitrine_catalog.domain.matching import TrackRef
from vitrine_catalog.domain.products import Product, Shop
from vitrine_catalog.settings import CatalogSettings
from vitrine_runtime.consumer import EventConsumer, IncomingMessage, Outcome
from vitrine_runtime.db import Database
from vitrine_runtime.media import LocalMediaStore
from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import CropRef, ObjectsDetected, ShopKind
from vitrine_schemas.money import Money
from vitrine_stack.samples import studio_images, video_crops

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def embedder() -> ImageEmbedder:
    """As the service runs it: the committed matcher head and the object's colour."""
    return load_embedder(CatalogSettings(embed_threads=2))


def hue_shifted(photo: np.ndarray, degrees: int) -> np.ndarray:
    """The same object in another colour: the look-alike a shop sells next to it."""
    hsv = np.asarray(Image.fromarray(photo).convert("RGB").convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(int) + round(degrees / 360 * 256)) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


class Harness:
    def __init__(self, catalog: Catalog, media: LocalMediaStore) -> None:
        self.catalog = catalog
        self.media = media
        self.dead_letters: list[dict[str, str]] = []
        self.consumer = EventConsumer("catalog", max_attempts=1, retry_backoff_s=0)

        async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: Any) -> None:
            self.dead_letters.append(headers)

        self.consumer.bind(catalog.db, dead_letter)
        handlers.register(self.consumer, lambda: catalog)
        self._offset = 0

    async def shop(self) -> Shop:
        return await self.catalog.create_shop("Look-alikes Ltd", ShopKind.THIRD_PARTY, "seller-1")

    async def product(self, shop: Shop, title: str, photo: np.ndarray) -> Product:
        product = await self.catalog.create_product(
            shop.shop_id, title, Money(amount_minor=1900, currency="EUR"), 5, 1000
        )
        for image in studio_images_of(photo):
            await self.catalog.add_image(product.product_id, image, "image/jpeg")
        return product

    async def track(
        self, video_id: str, track_id: str, photo: np.ndarray, seed: int
    ) -> ObjectsDetected:
        crops = []
        for n, crop in enumerate(video_crops(photo, count=3, seed=seed)):
            uri = await self.media.put(f"crops/{video_id}/{track_id}-{n}.jpg", crop, "image/jpeg")
            crops.append(CropRef(uri=uri, at_ms=1000 + 200 * n, quality=0.9 - 0.1 * n))
        return ObjectsDetected(
            video_id=video_id,
            creator_id="creator-1",
            track_id=track_id,
            label="object",
            confidence=0.9,
            first_seen_ms=1000,
            last_seen_ms=1400,
            crops=crops,
        )

    async def deliver(self, event: Event) -> Outcome:
        envelope = Envelope.wrap(event, producer="test-detector")
        return await self.deliver_raw(envelope.data.topic, envelope.to_bytes(), envelope.headers())

    async def deliver_raw(self, topic: str, value: bytes, headers: dict[str, str]) -> Outcome:
        self._offset += 1
        return await self.consumer.handle(
            IncomingMessage(
                topic=topic,
                partition=0,
                offset=self._offset,
                key=None,
                value=value,
                headers={k: v.encode() for k, v in headers.items()},
            )
        )

    async def outbox(self, event_type: str) -> list[tuple[bytes, dict[str, str]]]:
        async with self.catalog.db.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT payload, headers FROM outbox WHERE event_type = $1 ORDER BY id", event_type
            )
        return [(bytes(r["payload"]), _headers(r["headers"])) for r in rows]

    async def redeliver_product_events(self) -> list[Outcome]:
        """Everything the catalog announced about products, back to its own consumer."""
        return [
            await self.deliver_raw("products", payload, headers)
            for payload, headers in await self.outbox("catalog.product_upserted")
        ]

    async def matched(self) -> list[dict[str, Any]]:
        return [json.loads(p)["data"] for p, _ in await self.outbox("product.matched")]

    async def tags(self, video_id: str) -> dict[str, str]:
        rows = await self.catalog.video_tags(video_id)
        return {r["track_id"]: r["product_id"] for r in rows}


def _headers(raw: Any) -> dict[str, str]:
    return dict(json.loads(raw) if isinstance(raw, str) else raw)


def studio_images_of(photo: np.ndarray) -> list[bytes]:
    from vitrine_stack.samples import SampleProduct

    return studio_images(SampleProduct("p", "p", lambda: photo))


@pytest.fixture
async def harness(
    database: Database, embedder: ImageEmbedder, tmp_path: Path
) -> AsyncIterator[Harness]:
    await database.migrate("vitrine_catalog.migrations")
    images = QdrantEdgeIndex(str(tmp_path / "images"), embedder.dimension)
    crops = QdrantEdgeIndex(str(tmp_path / "crops"), embedder.dimension)
    await images.ensure_collection()
    await crops.ensure_collection()
    media = LocalMediaStore(tmp_path / "media")
    envelope: Callable[[Event], Envelope[Event]] = lambda event: Envelope.wrap(  # noqa: E731
        event, producer="catalog"
    )
    catalog = Catalog(
        db=database,
        media=media,
        embedder=embedder,
        index=images,
        track_crops=crops,
        settings=CatalogSettings(),
        envelope=envelope,
    )
    try:
        yield Harness(catalog, media)
    finally:
        await images.close()
        await crops.close()


async def test_a_video_seen_before_its_product_existed_becomes_shoppable(
    harness: Harness,
) -> None:
    shop = await harness.shop()
    await harness.product(shop, "Espresso cup", skimage_data.coffee())
    video = "vid-back-catalog"
    cat_track = await harness.track(video, "cat", skimage_data.chelsea(), seed=1)
    wall_track = await harness.track(video, "wall", skimage_data.brick(), seed=2)
    assert await harness.deliver(cat_track) is Outcome.HANDLED
    assert await harness.deliver(wall_track) is Outcome.HANDLED
    assert await harness.tags(video) == {}  # no cat is for sale yet
    await harness.redeliver_product_events()  # the cup's own events find nothing new
    assert await harness.matched() == []

    # Re-matching must use the kept crop vectors, not the crops: they may be gone by now.
    for crop in cat_track.crops + wall_track.crops:
        harness.media.path_of(crop.uri).unlink()
    cushion = await harness.product(shop, "Tabby cat cushion", skimage_data.chelsea())
    outcomes = await harness.redeliver_product_events()

    assert Outcome.HANDLED in outcomes
    assert harness.dead_letters == []
    assert await harness.tags(video) == {"cat": cushion.product_id}
    [matched] = await harness.matched()
    assert (matched["video_id"], matched["track_id"]) == (video, "cat")
    assert matched["product_id"] == cushion.product_id
    assert (matched["first_seen_ms"], matched["last_seen_ms"]) == (1000, 1400)
    assert matched["score"] >= harness.catalog.settings.match_score_threshold

    # Redelivered events are skipped; a later change of the product re-matches again, but
    # a track carries one tag at most, announced once.
    assert set(await harness.redeliver_product_events()) == {Outcome.DUPLICATE}
    await harness.catalog.add_image(
        cushion.product_id, studio_images_of(skimage_data.chelsea())[0], "image/jpeg"
    )
    await harness.redeliver_product_events()
    assert len(await harness.matched()) == 1
    assert await harness.tags(video) == {"cat": cushion.product_id}


async def test_an_archived_product_claims_no_track(harness: Harness) -> None:
    from vitrine_catalog.domain.products import ProductChange
    from vitrine_schemas.events import ProductStatus

    shop = await harness.shop()
    video = "vid-archived"
    await harness.deliver(await harness.track(video, "rocket", skimage_data.rocket(), seed=3))
    rocket = await harness.product(shop, "Rocket print", skimage_data.rocket())
    await harness.catalog.change_product(
        rocket.product_id, ProductChange(status=ProductStatus.ARCHIVED)
    )
    # Only the archived state is delivered: the events of its active days are not.
    payload, headers = (await harness.outbox("catalog.product_upserted"))[-1]
    assert await harness.deliver_raw("products", payload, headers) is Outcome.HANDLED

    assert await harness.tags(video) == {}


# Rocket turned 180 degrees of hue is the hard pair for ImageNet features alone: they are
# nearly colour-blind, and the originals' crops scored 0.67-0.74 for their own product but
# 0.69-0.75 for the recoloured one, so only the margin over the runner-up kept them apart.
# The matcher head's colour term separates them outright (with MATCH_MARGIN=0 this passes
# too); the margin stays as the second guard.
@pytest.mark.parametrize(("photo", "degrees"), [("coffee", 120), ("rocket", 180)])
async def test_look_alikes_are_kept_apart(harness: Harness, photo: str, degrees: int) -> None:
    """Same object in two colours, both for sale: a track of either gets its own product
    or no tag, never the other colour."""
    shop = await harness.shop()
    original = getattr(skimage_data, photo)()
    photos = {"original": original, "recoloured": hue_shifted(original, degrees)}
    products = {
        name: await harness.product(shop, f"{photo}, {name}", image)
        for name, image in photos.items()
    }
    video = f"vid-{photo}-{degrees}"
    for name, image in photos.items():
        for seed in range(3):
            await harness.deliver(await harness.track(video, f"{name}-{seed}", image, seed=seed))

    tags = await harness.tags(video)
    wrong = {
        track: product
        for track, product in tags.items()
        if product != products[track.rsplit("-", 1)[0]].product_id
    }
    assert wrong == {}
    assert len(tags) >= 2, f"too cautious: only {sorted(tags)} of 6 tracks tagged"


async def test_every_studio_image_is_indexed_as_shot_and_turned(harness: Harness) -> None:
    """Each product image is one index point per view (MATCH_STUDIO_ROTATIONS): the shot
    under its own id, every turn under an id derived from it, all naming their image."""
    catalog = harness.catalog
    turns = catalog.embedder.studio_rotations
    assert turns == CatalogSettings().match_studio_rotations == (0, 20, -20)
    shop = await harness.shop()
    cup = await harness.product(shop, "Espresso cup", skimage_data.coffee())
    async with catalog.db.pool.acquire() as conn:
        image_ids = [
            str(r["image_id"]) for r in await conn.fetch("SELECT image_id FROM product_images")
        ]

    assert await catalog.index.count() == len(image_ids) * len(turns)
    views = await catalog.index.vectors([studio_point_id(i, t) for i in image_ids for t in turns])
    assert len(views) == len(image_ids) * len(turns)
    assert [studio_point_id(i, 0) for i in image_ids] == image_ids
    [image_id, *_] = image_ids
    shot, left, right = (views[studio_point_id(image_id, t)] for t in turns)
    assert float(shot @ left) < 0.99
    assert float(left @ right) < 0.99
    hits = await catalog.index.search(left, 1)
    assert hits[0].payload["product_id"] == cup.product_id
    assert hits[0].payload["image_id"] == image_id
    assert hits[0].payload["turn"] == 20


async def test_turns_no_longer_made_leave_the_index_when_images_are_embedded_again(
    harness: Harness,
) -> None:
    """Dropping the turned views (another model version) re-embeds every image as one
    point and deletes the turned ones, which would otherwise fill crops' hits for good; an
    image that can no longer be read loses all its points. Crops do not turn: the kept
    crops of an untagged track are not embedded again for it."""
    catalog = harness.catalog
    shop = await harness.shop()
    await harness.product(shop, "Espresso cup", skimage_data.coffee())
    video = "vid-turns"
    await harness.deliver(await harness.track(video, "cat", skimage_data.chelsea(), seed=4))
    assert await harness.tags(video) == {}  # kept for re-matching
    async with catalog.db.pool.acquire() as conn:
        rows = await conn.fetch("SELECT image_id, media_uri FROM product_images ORDER BY image_id")
    assert await catalog.index.count() == len(rows) * 3
    harness.media.path_of(rows[0]["media_uri"]).unlink()  # lost from the media store
    catalog.embedder = load_embedder(CatalogSettings(embed_threads=2, match_studio_rotations=(0,)))

    assert await catalog.reembed_stale() == (len(rows) - 1, 0)

    assert await catalog.index.count() == len(rows) - 1
    kept = await catalog.index.vectors([str(row["image_id"]) for row in rows])
    assert sorted(kept) == sorted(str(row["image_id"]) for row in rows[1:])


def test_studio_rotations_must_start_with_the_shot_itself() -> None:
    for turns in ((20, 0), (), (0, 20, 20), (0, 20, 380)):
        with pytest.raises(ValueError, match="first 0"):
            CatalogSettings(match_studio_rotations=turns)


async def test_vectors_of_another_model_are_ignored_until_embedded_again(
    harness: Harness,
) -> None:
    """An upgrade that changes the embedding (model, input size, arithmetic) must not
    compare old vectors with new ones; the start-up job embeds them again, including the
    crops of tracks judged before re-matching existed."""
    catalog = harness.catalog
    shop = await harness.shop()
    cup = await harness.product(shop, "Espresso cup", skimage_data.coffee())
    video = "vid-upgrade"
    await harness.deliver(await harness.track(video, "cat", skimage_data.chelsea(), seed=4))
    # Pretend both were embedded by an older model: scrambled vectors, older labels, and
    # the track's crops never kept.
    async with catalog.db.transaction() as conn:
        image_rows = await conn.fetch("SELECT image_id FROM product_images")
        await conn.execute("UPDATE product_images SET embedding_model = 'old-model@1'")
        await conn.execute("UPDATE video_tracks SET embedding_model = NULL")
    turns = catalog.embedder.studio_rotations
    # The old model indexed each image once, under its own id.
    await catalog.index.delete(
        [studio_point_id(row["image_id"], turn) for row in image_rows for turn in turns[1:]]
    )
    rng = np.random.default_rng(0)
    await catalog.index.upsert(
        [
            VectorPoint(
                str(row["image_id"]),
                np.abs(rng.standard_normal(embedder_dimension(catalog))),
                {"product_id": cup.product_id, "shop_id": shop.shop_id, "model": "old-model@1"},
            )
            for row in image_rows
        ]
    )
    await catalog.track_crops.delete(
        [crop_point_id(TrackRef(video, "cat", "", 0, 0), n) for n in range(3)]
    )

    await harness.deliver(await harness.track(video, "cup-before", skimage_data.coffee(), seed=5))
    assert await harness.tags(video) == {}  # the cup's stale vectors were not compared

    assert await catalog.reembed_stale() == (len(image_rows), 1)
    assert await catalog.index.count() == len(image_rows) * len(turns)  # every view, once
    # The cup, embedded again, was re-matched: the track it missed meanwhile is tagged.
    assert await harness.tags(video) == {"cup-before": cup.product_id}
    assert await catalog.reembed_stale() == (0, 0)  # nothing left
    await harness.deliver(await harness.track(video, "cup-after", skimage_data.coffee(), seed=6))
    cushion = await harness.product(shop, "Tabby cat cushion", skimage_data.chelsea())
    await harness.redeliver_product_events()

    assert await harness.tags(video) == {
        "cup-before": cup.product_id,
        "cup-after": cup.product_id,
        "cat": cushion.product_id,  # its crops were embedded again, so it was re-matched
    }


def embedder_dimension(catalog: Catalog) -> int:
    return catalog.embedder.dimension


async def test_every_judged_track_keeps_the_best_guess_and_its_lead(harness: Harness) -> None:
    """Tagged or not, a track's best product and score stay on record (GET
    /videos/{id}/tracks): an operator can see why something was not tagged."""
    shop = await harness.shop()
    cup = await harness.product(shop, "Espresso cup", skimage_data.coffee())
    saucer = await harness.product(
        shop, "Cup, other colour", hue_shifted(skimage_data.coffee(), 120)
    )
    video = "vid-judged"
    await harness.deliver(await harness.track(video, "cup", skimage_data.coffee(), seed=7))
    await harness.deliver(await harness.track(video, "wall", skimage_data.brick(), seed=8))

    judged = {r["track_id"]: r for r in await harness.catalog.video_tracks(video)}
    assert set(judged) == {"cup", "wall"}
    cup_row, wall_row = judged["cup"], judged["wall"]
    assert cup_row["best_product_id"] == cup_row["tagged_product_id"] == cup.product_id
    assert cup_row["best_score"] >= harness.catalog.settings.match_score_threshold
    assert 0 < cup_row["runner_up_score"] < cup_row["best_score"]
    assert wall_row["tagged_product_id"] is None
    assert wall_row["best_product_id"] in {cup.product_id, saucer.product_id}
    assert wall_row["best_score"] < harness.catalog.settings.match_score_threshold


async def test_under_the_verifier_a_track_is_tagged_on_its_confidence_and_keeps_it(
    harness: Harness,
) -> None:
    """The default rule as the service runs it (the committed verifier): the cup's track is
    tagged as the cup, not its look-alike; the brick wall resembles nothing convincingly.
    Both rows keep the confidence they were judged on, against the cut."""
    verifier = harness.catalog.verifier = load_verifier(DEFAULT_VERIFIER)
    shop = await harness.shop()
    cup = await harness.product(shop, "Espresso cup", skimage_data.coffee())
    await harness.product(shop, "Cup, other colour", hue_shifted(skimage_data.coffee(), 120))
    video = "vid-verified"
    await harness.deliver(await harness.track(video, "cup", skimage_data.coffee(), seed=7))
    await harness.deliver(await harness.track(video, "wall", skimage_data.brick(), seed=8))

    assert await harness.tags(video) == {"cup": cup.product_id}
    judged = {r["track_id"]: r for r in await harness.catalog.video_tracks(video)}
    cut = verifier.cut
    assert judged["cup"]["match_confidence"] >= cut
    assert 0 <= judged["wall"]["match_confidence"] < cut
    assert judged["wall"]["best_product_id"] is not None


async def test_a_track_seen_in_few_crops_must_score_higher(harness: Harness) -> None:
    """The same cup, once a full track and once a glimpse of one crop: with a penalty that
    puts the glimpse's bar above what it scores, only the full track is tagged, and the
    glimpse's row says what it would have needed."""
    shop = await harness.shop()
    cup = await harness.product(shop, "Espresso cup", skimage_data.coffee())
    video = "vid-glimpse"
    full = await harness.track(video, "full", skimage_data.coffee(), seed=7)
    glimpse = await harness.track(video, "glimpse", skimage_data.coffee(), seed=7)
    glimpse = glimpse.model_copy(update={"crops": glimpse.crops[:1]})
    # The harness's 3-crop tracks count as full ones here.
    settings = CatalogSettings(match_short_track_penalty=2.0, max_crops_per_track=len(full.crops))
    harness.catalog.settings = settings

    await harness.deliver(full)
    await harness.deliver(glimpse)

    assert await harness.tags(video) == {"full": cup.product_id}
    judged = {r["track_id"]: r for r in await harness.catalog.video_tracks(video)}
    assert judged["full"]["crops_judged"] == len(full.crops)
    assert judged["glimpse"]["crops_judged"] == 1
    assert judged["glimpse"]["best_product_id"] == cup.product_id
    handicap = harness.catalog.short_track_handicap(1)
    assert handicap == pytest.approx(2.0 * (1 - 1 / math.sqrt(len(full.crops))), abs=1e-6)
    assert harness.catalog.short_track_handicap(len(full.crops)) == 0.0
    assert judged["glimpse"]["best_score"] < settings.match_score_threshold + handicap


async def test_every_candidate_is_scored_on_every_crop_not_only_where_it_was_a_hit(
    harness: Harness,
) -> None:
    """With one image hit per crop, each product is a hit in only some of a track's crops
    (here: a track whose light changes its colour half-way). Both must be scored on every
    crop, their best cosine averaged, as computed here from the model itself; scoring
    only the hits (0 elsewhere) would understate both."""
    harness.catalog.settings = CatalogSettings(match_candidates=1)
    shop = await harness.shop()
    original = skimage_data.coffee()
    recoloured = hue_shifted(original, 40)
    cup = await harness.product(shop, "Cup", original)
    warm = await harness.product(shop, "Cup, recoloured", recoloured)
    video = "vid-crowded"
    in_white_light = await harness.track(video, "cup", original, seed=5)
    in_warm_light = await harness.track(video, "cup-warm", recoloured, seed=6)
    crops = in_white_light.crops + in_warm_light.crops[:2]
    track = in_white_light.model_copy(update={"crops": crops})
    assert await harness.deliver(track) is Outcome.HANDLED

    embedder = harness.catalog.embedder
    blobs = [harness.media.path_of(c.uri).read_bytes() for c in crops]
    vectors = embedder.embed_bytes(blobs, view="crop")

    def exact(photo: np.ndarray) -> float:
        views = embedder.embed_studio_views(studio_images_of(photo))
        images = views.reshape(-1, embedder.dimension)  # every turned view of every shot
        return float((vectors @ images.T).max(axis=1).mean())

    scores = {cup.product_id: exact(original), warm.product_id: exact(recoloured)}
    best, runner_up = sorted(scores, key=scores.__getitem__, reverse=True)
    [judged] = await harness.catalog.video_tracks(video)
    assert judged["best_product_id"] == best
    assert judged["best_score"] == pytest.approx(scores[best], abs=2e-3)
    assert judged["runner_up_score"] == pytest.approx(scores[runner_up], abs=2e-3)
