"""Objects seen in a video become shoppable tags through the real broker, Postgres,
detector (PyAV, YOLO), embedding model and Qdrant engine; things no shop sells do not."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from vitrine_runtime.media import LocalMediaStore
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import CropRef, ObjectsDetected, VideoConsentChanged
from vitrine_schemas.money import Money
from vitrine_shopbench.scoring import overlaps
from vitrine_stack import shopbench
from vitrine_stack.client import PlatformClient, Seller, eventually
from vitrine_stack.samples import DISTRACTORS, SampleProduct, video_crops

pytestmark = pytest.mark.e2e


async def detect(
    client: PlatformClient,
    media: LocalMediaStore,
    video_id: str,
    track_id: str,
    photo: object,
    seed: int,
) -> None:
    crops = []
    for n, crop in enumerate(video_crops(photo(), count=3, seed=seed)):  # type: ignore[operator]
        uri = await media.put(f"crops/{video_id}/{track_id}-{n}.jpg", crop, "image/jpeg")
        crops.append(CropRef(uri=uri, at_ms=1000 + n * 200, quality=0.8))
    await client.publish(
        Envelope.wrap(
            ObjectsDetected(
                video_id=video_id,
                creator_id="creator-1",
                track_id=track_id,
                label="object",
                confidence=0.9,
                first_seen_ms=1000,
                last_seen_ms=2400,
                crops=crops,
            ),
            producer="test-detector",
        )
    )


async def test_products_in_a_video_become_tags_and_distractors_do_not(
    client: PlatformClient,
    media: LocalMediaStore,
    seller: Seller,
    samples: dict[str, SampleProduct],
) -> None:
    shop = await seller.shop()
    cup = await seller.product(
        shop, price=Money(amount_minor=1500, currency="EUR"), sample=samples["coffee"]
    )
    cat = await seller.product(
        shop, price=Money(amount_minor=2500, currency="EUR"), sample=samples["chelsea"]
    )
    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    await detect(client, media, video_id, "cup", samples["coffee"].photo, seed=1)
    await detect(client, media, video_id, "cat", samples["chelsea"].photo, seed=2)
    for n, (_, photo) in enumerate(DISTRACTORS):
        await detect(client, media, video_id, f"distractor-{n}", photo, seed=10 + n)
    await detect(client, media, video_id, "last", samples["coffee"].photo, seed=3)

    async def judged_all() -> bool:
        # Tracks are handled in order per video (one partition), so once the last one is
        # tagged every earlier one has been judged.
        body = await client.call("catalog", "GET", f"/videos/{video_id}/tags")
        return any(t["track_id"] == "last" for t in body["tags"])

    await eventually(judged_all, timeout_s=90, what="the video's tracks to be matched")
    tags = {
        t["track_id"]: t
        for t in (await client.call("catalog", "GET", f"/videos/{video_id}/tags"))["tags"]
    }
    assert tags["cup"]["product_id"] == cup["product_id"]
    assert tags["cat"]["product_id"] == cat["product_id"]
    assert (tags["cup"]["first_seen_ms"], tags["cup"]["last_seen_ms"]) == (1000, 2400)
    assert not any(track.startswith("distractor") for track in tags)

    matched = await client.read_topic(
        "matches",
        until=lambda records: sum(r.key == video_id.encode() for r in records) >= 3,
        timeout_s=30,
    )
    for_video = [json.loads(r.value) for r in matched if r.key == video_id.encode()]
    assert {e["data"]["track_id"] for e in for_video} == {"cup", "cat", "last"}
    assert all(e["type"] == "product.matched" for e in for_video)


async def test_a_crop_outside_the_media_store_is_refused_and_dead_lettered(
    client: PlatformClient,
) -> None:
    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    await client.publish(
        Envelope.wrap(
            ObjectsDetected(
                video_id=video_id,
                creator_id="creator-1",
                track_id="evil",
                label="object",
                confidence=0.9,
                first_seen_ms=0,
                last_seen_ms=1,
                crops=[CropRef(uri="file:///etc/passwd", at_ms=0, quality=1.0)],
            ),
            producer="test-detector",
        )
    )
    records = await client.read_topic(
        "dlq.catalog", until=lambda rs: any(r.key == video_id.encode() for r in rs)
    )
    dead = next(r for r in records if r.key == video_id.encode())
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq-reason"] == "rejected"
    assert "file" in headers["dlq-detail"]


# --- a real video through the detector ------------------------------------------------


@pytest.fixture(scope="session")
def small_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ShopBench's small dataset (seed 7): 9 products, 5 s clips with ground truth."""
    return shopbench.ensure_dataset(
        tmp_path_factory.mktemp("shopbench"), 7, "small", ["test", "val"], log=lambda _: None
    )


@pytest.fixture(scope="session")
async def bench_catalog(client: PlatformClient, small_bench: Path) -> shopbench.ListedCatalog:
    return await shopbench.list_catalog(client, small_bench)


async def test_a_generated_video_becomes_shoppable_with_its_time_spans(
    client: PlatformClient,
    media: LocalMediaStore,
    small_bench: Path,
    bench_catalog: shopbench.ListedCatalog,
) -> None:
    truth = shopbench.truths(small_bench, "test")["test-0000"]
    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    await shopbench.upload(client, media, small_bench / truth["file"], video_id, "creator-7")

    record = await shopbench.outcome(client, video_id)
    assert record["outcome"] == "processed", record
    assert record["frames_sampled"] < record["frames_decoded"]  # sampled, not every frame
    judged = await shopbench.judged_tracks(client, video_id, record["track_count"])
    tags = await shopbench.tags(client, video_id)

    on_screen = {p["product_id"]: p["spans_ms"] for p in truth["products"]}
    assert tags, f"nothing tagged; the catalog judged {judged}"
    for tag in tags:
        shown = bench_catalog.bench_id(tag["product_id"])
        assert shown in on_screen, f"tagged {shown}, which the video does not show"
        # The tag's span is when its product is on screen (within half a second).
        assert overlaps(tag["first_seen_ms"], tag["last_seen_ms"], on_screen[shown], 500)
        assert tag["last_seen_ms"] > tag["first_seen_ms"]
    # The same tags reached the topic other services subscribe to.
    key = video_id.encode()
    matched = await client.read_topic(
        "matches", until=lambda rs: sum(r.key == key for r in rs) >= len(tags), timeout_s=30
    )
    published = {json.loads(r.value)["data"]["track_id"] for r in matched if r.key == key}
    assert published == {t["track_id"] for t in tags}


async def test_without_consent_nothing_is_tagged_until_consent_is_given(
    client: PlatformClient,
    media: LocalMediaStore,
    small_bench: Path,
    bench_catalog: shopbench.ListedCatalog,
) -> None:
    truth = shopbench.truths(small_bench, "test")["test-0000"]
    video_id = f"vid-{uuid.uuid4().hex[:8]}"
    uploaded = await shopbench.upload(
        client,
        media,
        small_bench / truth["file"],
        video_id,
        "creator-8",
        identify_products=False,
    )
    record = await shopbench.outcome(client, video_id)
    assert record["outcome"] == "skipped_no_consent"
    assert record["track_count"] == 0
    assert await shopbench.tags(client, video_id) == []

    await client.publish(
        Envelope.wrap(
            VideoConsentChanged(
                video_id=video_id,
                creator_id="creator-8",
                media_uri=uploaded.media_uri,
                identify_products=True,
            ),
            producer="upload-service",
        )
    )

    async def processed() -> dict[str, Any] | None:
        body: dict[str, Any] = await client.call("detector", "GET", f"/videos/{video_id}")
        return body if body["outcome"] == "processed" else None

    record = await eventually(processed, timeout_s=120, what="the video to be processed")
    await shopbench.judged_tracks(client, video_id, record["track_count"])
    assert await shopbench.tags(client, video_id)
