"""ShopBench on a running platform: its catalog listed through the catalog API, its
videos uploaded the way the upload service would, and what became of them read back.

The demo, `make eval` and the cross-service tests share these steps, so all three drive
the same real path: media store, `video.uploaded`, detector, `objects.detected`, catalog
matcher, `product.matched`, tags.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitrine_runtime.media import MediaStore
from vitrine_schemas.envelope import Envelope
from vitrine_schemas.events import VideoUploaded
from vitrine_schemas.money import Money
from vitrine_shopbench.config import SCALES
from vitrine_shopbench.generate import generate, plan_dataset
from vitrine_stack.client import PlatformClient, eventually

DONE_OUTCOMES = frozenset({"processed", "failed", "skipped_no_consent"})


def ensure_dataset(
    root: Path,
    seed: int,
    scale: str,
    splits: Iterable[str],
    *,
    videos: Iterable[str] | None = None,
    jobs: int = 2,
    log: Any = print,
) -> Path:
    """Make the ShopBench videos that `root` lacks (generation is deterministic, so a
    video made before is the same video); returns `root`."""
    splits = list(splits)
    wanted = set(videos) if videos is not None else None
    _, plans = plan_dataset(seed, SCALES[scale], splits)
    missing = [
        p.video_id
        for p in plans
        if (wanted is None or p.video_id in wanted)
        and not (root / "groundtruth" / p.split / f"{p.video_id}.json").exists()
    ]
    if missing or not (root / "catalog" / "catalog.json").exists():
        log(f"ShopBench (seed {seed}, {scale}): making {len(missing)} video(s) in {root} ...")
        generate(seed, root, scale, splits, jobs=jobs, yolo=False, log=log, videos=missing)
    return root


def truths(root: Path, split: str) -> dict[str, dict[str, Any]]:
    """Ground truth of a split's videos in a dataset, by video id."""
    return {
        path.stem: json.loads(path.read_text())
        for path in sorted((root / "groundtruth" / split).glob("*.json"))
    }


@dataclass
class ListedCatalog:
    """A ShopBench catalog as listed in the catalog service: ids both ways."""

    shops: dict[str, dict[str, Any]] = field(default_factory=dict)  # bench id -> service shop
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # bench id -> product
    bench_ids: dict[str, str] = field(default_factory=dict)  # service product id -> bench id
    images: int = 0

    def bench_id(self, product_id: str) -> str:
        return self.bench_ids.get(product_id, product_id)


async def list_catalog(
    client: PlatformClient, root: Path, *, stock: int | None = None
) -> ListedCatalog:
    """Create every shop and product of the dataset's catalog, with its studio images."""
    catalog = json.loads((root / "catalog" / "catalog.json").read_text())
    listed = ListedCatalog()
    for shop in catalog["shops"]:
        listed.shops[shop["shop_id"]] = await client.call(
            "catalog",
            "POST",
            "/shops",
            json={
                "name": shop["name"],
                "kind": shop["kind"],
                "seller_id": "platform"
                if shop["kind"] == "first_party"
                else f"seller-{shop['shop_id']}",
            },
        )
    for product in catalog["products"]:
        shop = listed.shops[product["shop_id"]]
        created = await client.call(
            "catalog",
            "POST",
            f"/shops/{shop['shop_id']}/products",
            json={
                "title": product["title"],
                "price": Money.model_validate(product["price"]).model_dump(),
                "stock": product["stock"] if stock is None else stock,
                "commission_bps": product["commission_bps"],
            },
        )
        for image in product["images"]:
            await client.call(
                "catalog",
                "POST",
                f"/products/{created['product_id']}/images",
                content=await asyncio.to_thread((root / image).read_bytes),
                headers={"Content-Type": "image/jpeg"},
            )
            listed.images += 1
        listed.products[product["product_id"]] = {**created, "shop": shop}
        listed.bench_ids[created["product_id"]] = product["product_id"]
    return listed


@dataclass(frozen=True)
class Upload:
    media_uri: str
    at: float  # time.monotonic() when it was announced
    wall: float  # time.time() then


async def upload(
    client: PlatformClient,
    media: MediaStore,
    video: Path,
    video_id: str,
    creator_id: str,
    *,
    identify_products: bool = True,
) -> Upload:
    """Store the file in the media store and announce it with `video.uploaded`."""
    suffix = video.suffix.lower()
    content_type = {".mp4": "video/mp4", ".webm": "video/webm"}.get(suffix, "video/mp4")
    data = await asyncio.to_thread(video.read_bytes)
    uri = await media.put(f"videos/{video_id}{suffix}", data, content_type)
    uploaded = Upload(uri, time.monotonic(), time.time())
    await client.publish(
        Envelope.wrap(
            VideoUploaded(
                video_id=video_id,
                creator_id=creator_id,
                media_uri=uri,
                identify_products=identify_products,
            ),
            producer="upload-service",
        )
    )
    return uploaded


async def outcome(client: PlatformClient, video_id: str, timeout_s: float = 300.0) -> Any:
    """The detector's record of the video, once it is done with it."""

    async def done() -> Any:
        response = await client["detector"].get(f"/videos/{video_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body = response.json()
        return body if body["outcome"] in DONE_OUTCOMES else None

    return await eventually(done, timeout_s=timeout_s, every_s=0.1, what=f"video {video_id}")


async def judged_tracks(
    client: PlatformClient, video_id: str, count: int, timeout_s: float = 120.0
) -> list[dict[str, Any]]:
    """The catalog's judgement of every one of the video's `count` tracks."""

    async def all_judged() -> list[dict[str, Any]] | None:
        body = await client.call("catalog", "GET", f"/videos/{video_id}/tracks")
        tracks: list[dict[str, Any]] = body["tracks"]
        return tracks if len(tracks) >= count else None

    if count == 0:
        return []
    return await eventually(
        all_judged, timeout_s=timeout_s, every_s=0.1, what=f"the tracks of {video_id}"
    )


async def tags(client: PlatformClient, video_id: str) -> list[dict[str, Any]]:
    body = await client.call("catalog", "GET", f"/videos/{video_id}/tags")
    return list(body["tags"])
