"""Make a ShopBench dataset from a seed.

Layout of the output folder:

    manifest.json                  seed, scale, splits, counts, photo sources
    catalog/catalog.json           shops, products (price, look-alikes), image paths
    catalog/images/pNNNN_K.jpg     studio shots
    videos/<split>/<id>.mp4|webm   H.264 in MP4 or VP9 in WebM
    groundtruth/<split>/<id>.json  what is on screen, when and where
    yolo/data.yaml                 detector training set: one class, "object"
    yolo/images/<split>/*.jpg, yolo/labels/<split>/*.txt

Splits hold disjoint videos. Every split shows products of the one catalog (matching always
searches the whole catalog, as in production); a share of the products never appears in
a training video, and some background photos appear only in validation or only in test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from PIL import Image

from vitrine_shopbench import groundtruth, images
from vitrine_shopbench import rng as rngs
from vitrine_shopbench.catalog import Catalog, catalog_json, plan_catalog, write_studio_images
from vitrine_shopbench.config import SCALES, SPLIT_ONLY_PHOTOS, SPLITS, Scale
from vitrine_shopbench.encode import VideoWriter, check_encoders
from vitrine_shopbench.render import FrameRenderer, Seen
from vitrine_shopbench.scene import VideoPlan, plan_video

MANIFEST_SCHEMA = "shopbench.manifest/1"
YOLO_CLASSES: tuple[str, ...] = ("object",)
YOLO_VISIBLE_MIN = 0.2  # label an object for the detector when a fifth of it shows
YOLO_MIN_BOX_PX = 6
YOLO_IMAGE_SIDE = 640  # longest side of exported training images


@dataclass(frozen=True, slots=True)
class VideoResult:
    video_id: str
    split: str
    file: str
    frames: int
    duration_ms: int
    products: int
    objects: int
    yolo_images: int
    yolo_boxes: int
    seconds: float


def plan_dataset(
    seed: int, scale: Scale, splits: Iterable[str] = SPLITS
) -> tuple[Catalog, list[VideoPlan]]:
    catalog = plan_catalog(
        seed, scale.shops, scale.templates, scale.images_per_product, scale.held_out_share
    )
    shared_photos = [
        p for p in images.PHOTOS if not any(p in only for only in SPLIT_ONLY_PHOTOS.values())
    ]
    plans = []
    for split in splits:
        photos = shared_photos + list(SPLIT_ONLY_PHOTOS[split])
        if split == "train":
            products = [p for p in catalog.products if p.product_id not in catalog.held_out]
        else:
            # Held-out products get shown first where they exist, so they do appear.
            held = [p for p in catalog.products if p.product_id in catalog.held_out]
            rest = [p for p in catalog.products if p.product_id not in catalog.held_out]
            products = held + rest
        for index, slot in enumerate(scale.videos[split]):
            video_id = f"{split}-{index:04d}"
            pool = _rotate(
                products,
                rngs.stream(seed, "pool", video_id),
                favour_first=len(catalog.held_out) if split != "train" else 0,
            )
            plans.append(
                plan_video(seed, catalog, video_id, split, slot.format, slot.duration, pool, photos)
            )
    return catalog, plans


def _rotate(products: list[Any], rng: Any, favour_first: int) -> list[Any]:
    """Products for one video: with `favour_first` > 0, half the time one of the first
    `favour_first` (held-out) products leads; the rest follow in a random order."""
    order = [products[int(i)] for i in rng.permutation(len(products))]
    if favour_first and rng.random() < 0.5:
        lead = products[int(rng.integers(favour_first))]
        order.remove(lead)
        order.insert(0, lead)
    return order


def render_video(
    seed: int,
    plan: VideoPlan,
    root: Path,
    yolo_interval: float | None,
    without: frozenset[str] = frozenset(),
) -> VideoResult:
    """Render, encode, write the ground truth and (optionally) export detector images."""
    started = time.perf_counter()
    ext = plan.format.container
    relative = f"videos/{plan.split}/{plan.video_id}.{ext}"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    renderer = FrameRenderer(seed, plan, without)
    seen_per_frame: list[list[Seen]] = []
    with VideoWriter(path, plan.format, plan.quality) as writer:
        for index in range(plan.frame_count):
            frame, seen = renderer.frame(index)
            writer.write(frame)
            seen_per_frame.append(seen)
    truth = groundtruth.build(plan, seen_per_frame, relative)
    truth_path = root / "groundtruth" / plan.split / f"{plan.video_id}.json"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_text(json.dumps(truth, indent=1, sort_keys=True) + "\n")
    images_written = boxes_written = 0
    if yolo_interval is not None:
        images_written, boxes_written = export_yolo_frames(
            root, plan, path, seen_per_frame, yolo_interval
        )
    return VideoResult(
        video_id=plan.video_id,
        split=plan.split,
        file=relative,
        frames=plan.frame_count,
        duration_ms=truth["duration_ms"],
        products=len(truth["products"]),
        objects=len(truth["objects"]),
        yolo_images=images_written,
        yolo_boxes=boxes_written,
        seconds=round(time.perf_counter() - started, 2),
    )


def export_yolo_frames(
    root: Path, plan: VideoPlan, video: Path, seen_per_frame: list[list[Seen]], interval: float
) -> tuple[int, int]:
    """Frames decoded back from the encoded file (so the detector learns on compressed
    pixels), with every visible object labelled class 0, products and distractors alike:
    the detector finds objects, the catalog matcher decides which are for sale."""
    fps = plan.format.fps
    step = max(1, round(interval * fps))
    wanted = set(range(0, plan.frame_count, step))
    image_dir = root / "yolo" / "images" / plan.split
    label_dir = root / "yolo" / "labels" / plan.split
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    w, h = plan.format.width, plan.format.height
    k = YOLO_IMAGE_SIDE / max(w, h)
    count = boxes = 0
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index not in wanted or index >= len(seen_per_frame):
                continue
            name = f"{plan.video_id}_{index:05d}"
            image = frame.to_image()  # type: ignore[no-untyped-call]
            image = image.resize((round(w * k), round(h * k)), Image.Resampling.BILINEAR)
            image.save(image_dir / f"{name}.jpg", quality=90)
            lines = []
            for s in seen_per_frame[index]:
                x1, y1, x2, y2 = s.box
                if s.visible < YOLO_VISIBLE_MIN or min(x2 - x1, y2 - y1) < YOLO_MIN_BOX_PX:
                    continue
                cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
                lines.append(f"0 {cx:.6f} {cy:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
            (label_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
            count += 1
            boxes += len(lines)
    return count, boxes


def generate(
    seed: int,
    out: Path,
    scale_name: str = "small",
    splits: Iterable[str] = SPLITS,
    jobs: int = 1,
    yolo: bool = True,
    log: Callable[[str], None] = print,
    videos: Iterable[str] | None = None,
    without: Iterable[str] = (),
) -> dict[str, Any]:
    """Make the dataset; `videos` (ids such as "test-0003") makes only those of the
    chosen splits: each is the same as in the whole split. `without` names difficulties
    (render.DIFFICULTIES) left out of every frame: a diagnosis of what each costs, never a
    dataset to quote figures on."""
    check_encoders()
    skipped = frozenset(without)
    FrameRenderer.check(skipped)
    scale = SCALES[scale_name]
    splits = [s for s in SPLITS if s in set(splits)]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    catalog, plans = plan_dataset(seed, scale, splits)
    if videos is not None:
        wanted = set(videos)
        unknown = wanted - {p.video_id for p in plans}
        if unknown:
            raise ValueError(f"no such video in {scale.name} {splits}: {sorted(unknown)}")
        plans = [p for p in plans if p.video_id in wanted]
    (out / "catalog").mkdir(exist_ok=True)
    (out / "catalog" / "catalog.json").write_text(
        json.dumps(catalog_json(catalog), indent=1) + "\n"
    )
    write_studio_images(seed, catalog, out)
    elapsed = time.perf_counter() - started
    log(f"catalog: {len(catalog.shops)} shops, {len(catalog.products)} products ({elapsed:.1f} s)")
    # Longest first: the pool stays busy to the end.
    order = sorted(plans, key=lambda p: -p.frame_count * p.format.width * p.format.height)
    results: list[VideoResult] = []
    intervals = {s: scale.yolo_interval[s] if yolo else None for s in splits}
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [
                pool.submit(render_video, seed, p, out, intervals[p.split], skipped) for p in order
            ]
            for future in futures:
                results.append(future.result())
                _log_video(log, results[-1])
    else:
        for plan in order:
            results.append(render_video(seed, plan, out, intervals[plan.split], skipped))
            _log_video(log, results[-1])
    results.sort(key=lambda r: r.video_id)
    if yolo:
        _write_yolo_yaml(out, splits)
    manifest = _manifest(seed, scale, splits, catalog, results, yolo)
    if skipped:
        manifest["without"] = sorted(skipped)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    log(f"done in {time.perf_counter() - started:.1f} s: {out}")
    return manifest


def _log_video(log: Callable[[str], None], r: VideoResult) -> None:
    log(
        f"{r.file}: {r.frames} frames, {r.products} products, {r.objects} objects,"
        f" {r.yolo_images} detector images ({r.seconds:.1f} s)"
    )


def _write_yolo_yaml(out: Path, splits: list[str]) -> None:
    root = (out / "yolo").resolve()
    lines = [f"path: {root}"]
    lines += [f"{split}: images/{split}" for split in splits]
    lines += ["names:"] + [f"  {i}: {name}" for i, name in enumerate(YOLO_CLASSES)]
    (out / "yolo" / "data.yaml").write_text("\n".join(lines) + "\n")


def _manifest(
    seed: int,
    scale: Scale,
    splits: list[str],
    catalog: Catalog,
    results: list[VideoResult],
    yolo: bool,
) -> dict[str, Any]:
    used_photos = set(images.PHOTOS)
    return {
        "schema": MANIFEST_SCHEMA,
        "generator": "vitrine-shopbench",
        "seed": seed,
        "scale": scale.name,
        "splits": {s: [r.video_id for r in results if r.split == s] for s in splits},
        "split_only_photos": {s: list(SPLIT_ONLY_PHOTOS[s]) for s in splits},
        "photo_sources": {name: images.source_of(name) for name in sorted(used_photos)},
        "catalog": {
            "file": "catalog/catalog.json",
            "shops": len(catalog.shops),
            "products": len(catalog.products),
            "images": sum(len(p.images) for p in catalog.products),
            "held_out_from_train": sorted(catalog.held_out),
        },
        "videos": [
            {
                "video_id": r.video_id,
                "split": r.split,
                "file": r.file,
                "groundtruth": f"groundtruth/{r.split}/{r.video_id}.json",
                "frames": r.frames,
                "duration_ms": r.duration_ms,
                "products": r.products,
                "objects": r.objects,
            }
            for r in results
        ],
        "yolo": (
            {
                "data": "yolo/data.yaml",
                "classes": list(YOLO_CLASSES),
                "images": {s: sum(r.yolo_images for r in results if r.split == s) for s in splits},
                "boxes": {s: sum(r.yolo_boxes for r in results if r.split == s) for s in splits},
            }
            if yolo
            else None
        ),
        "rules": {
            "visible_min": groundtruth.VISIBLE_MIN,
            "min_box_px": groundtruth.MIN_BOX_PX,
            "yolo_visible_min": YOLO_VISIBLE_MIN,
        },
    }
