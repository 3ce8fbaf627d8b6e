"""The matcher's scoring rule on hand-made unit vectors, where every cosine is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vitrine_catalog.domain.matching import (
    ImageHit,
    candidates,
    judge,
    score_needed,
    score_products,
)


def unit(degrees: float) -> np.ndarray:
    """A 2-d unit vector at `degrees`: its cosine with unit(0) is cos(degrees)."""
    radians = math.radians(degrees)
    return np.array([math.cos(radians), math.sin(radians)], dtype=np.float32)


def stack(*degrees: float) -> np.ndarray:
    return np.stack([unit(d) for d in degrees])


def test_a_product_scores_its_best_image_in_each_crop_averaged_over_crops() -> None:
    crops = stack(0, 60)
    # Crop at 0 deg is best served by the 0-deg image (cos 1), crop at 60 by the 90-deg
    # one (cos 30 deg): (1 + cos 30) / 2.
    scores = score_products(crops, {"mug": stack(0, 90, 180)})
    assert scores["mug"] == pytest.approx((1 + math.cos(math.radians(30))) / 2, abs=1e-6)


def test_a_product_like_one_crop_only_scores_below_one_like_every_crop() -> None:
    crops = stack(0, 10, 20)
    scores = score_products(crops, {"steady": stack(10), "glimpse": stack(0, 120)})
    # steady: cos 10, 1, cos 10; glimpse, from its 0-deg image: 1, cos 10, cos 20.
    steady = (2 * math.cos(math.radians(10)) + 1) / 3
    glimpse = (1 + math.cos(math.radians(10)) + math.cos(math.radians(20))) / 3
    assert scores["steady"] == pytest.approx(steady, abs=1e-6)
    assert scores["glimpse"] == pytest.approx(glimpse, abs=1e-6)
    assert scores["steady"] > scores["glimpse"]


def test_a_product_without_images_is_not_scored() -> None:
    empty = np.zeros((0, 2), dtype=np.float32)
    assert score_products(stack(0), {"gone": empty}) == {}


def test_candidates_are_every_product_any_crop_proposed_with_its_shop() -> None:
    hits = [
        [ImageHit("mug", "shop-a", 0.9), ImageHit("cup", "shop-b", 0.8)],
        [ImageHit("mug", "shop-a", 0.7), ImageHit("vase", "shop-a", 0.5)],
        [],
    ]
    assert candidates(hits) == {"mug": "shop-a", "cup": "shop-b", "vase": "shop-a"}


@pytest.mark.parametrize(
    ("scores", "tagged"),
    [
        ({"mug": 0.70, "cup": 0.60}, "mug"),  # above threshold, clear lead
        ({"mug": 0.70, "cup": 0.68}, None),  # a look-alike too close behind
        ({"mug": 0.50, "cup": 0.10}, None),  # clear lead, but not similar enough
        ({"mug": 0.56}, "mug"),  # alone: the runner-up counts as 0
    ],
)
def test_judge_tags_only_above_threshold_and_ahead_by_the_margin(
    scores: dict[str, float], tagged: str | None
) -> None:
    shops = {"mug": "shop-a", "cup": "shop-b"}
    judgement = judge(scores, shops, threshold=0.55, margin=0.05)
    assert judgement.best is not None
    assert judgement.best.product_id == "mug"
    assert judgement.best.shop_id == "shop-a"
    assert (judgement.decision.product_id if judgement.decision else None) == tagged


def test_judge_of_nothing_is_no_guess() -> None:
    judgement = judge({}, {}, threshold=0.5, margin=0.0)
    assert judgement.best is None
    assert judgement.decision is None


def test_a_full_track_needs_the_threshold_and_shorter_ones_more() -> None:
    def needed(crops: int) -> float:
        return score_needed(0.44, crops, short_track_penalty=0.5, full_track_crops=8)

    assert needed(8) == pytest.approx(0.44)
    assert needed(12) == pytest.approx(0.44)  # judged on at most a full track's crops
    assert needed(4) == pytest.approx(0.44 + 0.5 * (1 / 2 - 1 / math.sqrt(8)))
    assert needed(2) == pytest.approx(0.44 + 0.5 * (1 / math.sqrt(2) - 1 / math.sqrt(8)))
    assert needed(0) == needed(1)
    assert needed(1) > needed(2) > needed(4) > needed(8)
    assert score_needed(0.44, 2, short_track_penalty=0.0, full_track_crops=8) == 0.44


@pytest.mark.parametrize(("crops", "tagged"), [(8, "mug"), (4, "mug"), (2, None)])
def test_judge_holds_a_short_track_to_a_higher_score(crops: int, tagged: str | None) -> None:
    """0.55 clears 0.44 for a full track and one of 4 crops (0.513 needed), not for a
    glimpse of 2 crops (0.617 needed)."""
    judgement = judge(
        {"mug": 0.55, "cup": 0.30},
        {"mug": "shop-a", "cup": "shop-b"},
        threshold=0.44,
        margin=0.10,
        crops=crops,
        short_track_penalty=0.5,
        full_track_crops=8,
    )
    assert judgement.best is not None
    assert judgement.best.product_id == "mug"
    assert judgement.crops == crops
    assert (judgement.decision.product_id if judgement.decision else None) == tagged
