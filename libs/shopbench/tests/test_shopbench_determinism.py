"""The same seed makes the same dataset; another seed makes another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from shopbench_helpers import SEED, first_frame_sha256

from vitrine_shopbench.catalog import catalog_json, studio_image
from vitrine_shopbench.config import FULL, SMALL
from vitrine_shopbench.generate import generate, plan_dataset, render_video


def test_same_seed_same_plans() -> None:
    catalog_a, plans_a = plan_dataset(SEED, FULL)
    catalog_b, plans_b = plan_dataset(SEED, FULL)
    assert catalog_a == catalog_b
    assert plans_a == plans_b
    other_catalog, other_plans = plan_dataset(SEED + 1, FULL)
    assert catalog_json(other_catalog) != catalog_json(catalog_a)
    assert [p.appearances for p in other_plans] != [p.appearances for p in plans_a]


def test_a_split_is_the_same_whichever_splits_are_made_with_it() -> None:
    _, everything = plan_dataset(SEED, FULL)
    _, test_only = plan_dataset(SEED, FULL, ["test"])
    assert test_only == [p for p in everything if p.split == "test"]


def test_same_seed_same_ground_truth_and_pixels(
    small: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    """Render the first video again, from scratch, into another folder."""
    first = manifest["videos"][0]
    _, plans = plan_dataset(SEED, SMALL, [first["split"]])
    plan = next(p for p in plans if p.video_id == first["video_id"])
    render_video(SEED, plan, tmp_path, None)
    again = json.loads((tmp_path / first["groundtruth"]).read_text())
    assert again == json.loads((small / first["groundtruth"]).read_text())
    assert first_frame_sha256(tmp_path / first["file"]) == first_frame_sha256(small / first["file"])
    assert (tmp_path / first["file"]).read_bytes() == (small / first["file"]).read_bytes()


def test_catalog_files_are_reproducible(small: Path, catalog: dict[str, Any]) -> None:
    planned, _ = plan_dataset(SEED, SMALL, [])
    assert json.loads(json.dumps(catalog_json(planned))) == catalog
    product = planned.products[0]
    image = studio_image(SEED, product, 0)
    assert image.tobytes() == studio_image(SEED, product, 0).tobytes()
    assert image.tobytes() != studio_image(SEED + 1, product, 0).tobytes()


def test_chosen_videos_are_made_alone_and_the_same(
    small: Path, manifest: dict[str, Any], tmp_path: Path
) -> None:
    last = manifest["videos"][-1]
    made = generate(
        SEED, tmp_path, "small", [last["split"]], videos=[last["video_id"]], log=lambda _: None
    )
    assert [v["video_id"] for v in made["videos"]] == [last["video_id"]]
    assert (tmp_path / last["file"]).read_bytes() == (small / last["file"]).read_bytes()
    with pytest.raises(ValueError, match="no such video"):
        generate(SEED, tmp_path, "small", ["val"], videos=["test-0000"], log=lambda _: None)
