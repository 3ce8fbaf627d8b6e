"""Objects seen in a video become shoppable tags through the real broker, Postgres,
embedding model and Qdrant engine; things no shop sells do not."""

from __future__ import annotations

import json
import uuid

import pytest

from vitrine_runtime.media import LocalMediaStore
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import CropRef, ObjectsDetected
from vitrine_schemas.money import Money
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
