"""Splits hold disjoint videos; what is kept out of training stays out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shopbench_helpers import SEED

from vitrine_shopbench.config import FULL, SPLIT_ONLY_PHOTOS, SPLITS
from vitrine_shopbench.generate import plan_dataset


def test_splits_are_disjoint_and_files_sit_in_their_split(
    small: Path, manifest: dict[str, Any], truths: list[dict[str, Any]]
) -> None:
    splits = manifest["splits"]
    assert set(splits) == set(SPLITS)
    seen: set[str] = set()
    for split in SPLITS:
        assert splits[split], split
        assert not seen & set(splits[split])
        seen |= set(splits[split])
    for truth in truths:
        assert truth["video_id"] in splits[truth["split"]]
        assert truth["file"].startswith(f"videos/{truth['split']}/")
    # Detector images come from their own split's videos only.
    for split in SPLITS:
        images = list((small / "yolo" / "images" / split).glob("*.jpg"))
        assert images
        for image in images:
            assert image.stem.rsplit("_", 1)[0] in splits[split]
            assert (small / "yolo" / "labels" / split / f"{image.stem}.txt").exists()


def test_full_scale_keeps_products_and_photos_out_of_training() -> None:
    catalog, plans = plan_dataset(SEED, FULL)
    assert len(catalog.held_out) >= 5
    shown: dict[str, set[str]] = {s: set() for s in SPLITS}
    photos: dict[str, set[str]] = {s: set() for s in SPLITS}
    for plan in plans:
        shown[plan.split] |= {a.product_id for a in plan.appearances if a.product_id}
        photos[plan.split] |= {s.background.photo for s in plan.shots}
    assert not shown["train"] & catalog.held_out
    assert shown["val"] & catalog.held_out
    assert shown["test"] & catalog.held_out
    for split, only in SPLIT_ONLY_PHOTOS.items():
        for other in SPLITS:
            if other != split:
                assert not photos[other] & set(only), (other, only)
    assert photos["test"] & set(SPLIT_ONLY_PHOTOS["test"])


def test_full_scale_covers_every_format_and_length() -> None:
    _, plans = plan_dataset(SEED, FULL, ["test"])
    formats = {(p.format.codec, min(p.format.width, p.format.height)) for p in plans}
    assert formats == {("h264", 720), ("h264", 1080), ("vp9", 720), ("vp9", 1080)}
    assert min(p.duration for p in plans) == 5.0
    assert max(p.duration for p in plans) == 60.0
    assert any(p.format.width == 1280 and p.format.codec == "h264" for p in plans)
