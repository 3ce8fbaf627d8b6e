"""Scoring a pipeline's tracks and tags against hand-made ground truth."""

from __future__ import annotations

from typing import Any

import pytest

from vitrine_shopbench.scoring import Tag, Track, TrackBox, iou, score


def truth() -> dict[str, Any]:
    """A 100 x 100 video, 2 s: product A (object 0) from 0 to 1 s at the top left,
    product B (object 1) from 1 to 2 s at the bottom right, a ball (object 2) throughout
    in the bottom left."""
    frames = []
    for t in range(0, 2000, 100):
        boxes = [{"object_id": 2, "box": [0, 60, 40, 100]}]
        if t < 1000:
            boxes.append({"object_id": 0, "box": [0, 0, 40, 40]})
        else:
            boxes.append({"object_id": 1, "box": [60, 60, 100, 100]})
        frames.append({"time_ms": t, "boxes": boxes})
    return {
        "width": 100,
        "height": 100,
        "frames": frames,
        "objects": [
            {"object_id": 0, "kind": "product", "product_id": "A", "family": "mug"},
            {"object_id": 1, "kind": "product", "product_id": "B", "family": "vase"},
            {"object_id": 2, "kind": "distractor", "product_id": None, "family": "ball"},
        ],
        "products": [
            {"product_id": "A", "spans_ms": [[0, 1000]]},
            {"product_id": "B", "spans_ms": [[1000, 2000]]},
        ],
    }


def track(track_id: str, box: tuple[float, float, float, float], start: int, end: int) -> Track:
    boxes = tuple(TrackBox(t, *box) for t in range(start, end, 200))
    return Track("v", track_id, start, end, boxes)


TOP_LEFT = (0.0, 0.0, 0.4, 0.4)
BOTTOM_RIGHT = (0.6, 0.6, 0.4, 0.4)
BOTTOM_LEFT = (0.0, 0.6, 0.4, 0.4)


def test_iou_of_boxes() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [10, 10, 20, 20]) == 0.0


def test_a_perfect_run_scores_one_everywhere() -> None:
    tracks = [track("a", TOP_LEFT, 0, 1000), track("b", BOTTOM_RIGHT, 1000, 2000)]
    tags = [Tag("v", "a", "A", 0, 900), Tag("v", "b", "B", 1000, 1900)]
    report = score({"v": truth()}, tracks, tags, {"A": ["B"], "B": ["A"]})
    assert (report.precision, report.recall, report.span_precision) == (1.0, 1.0, 1.0)
    assert (report.lookalike_tagged, report.lookalike_correct) == (2, 2)
    assert report.misses == []
    assert report.false_tags == []


def test_a_look_alike_tagged_instead_is_a_false_tag_and_a_miss() -> None:
    tracks = [track("a", TOP_LEFT, 0, 1000), track("b", BOTTOM_RIGHT, 1000, 2000)]
    tags = [Tag("v", "a", "A", 0, 900), Tag("v", "b", "C", 1000, 1900)]
    report = score({"v": truth()}, tracks, tags, {"B": ["C"]})
    assert (report.correct_pairs, report.tagged_pairs, report.truth_pairs) == (1, 2, 2)
    assert report.precision == 0.5
    assert report.recall == 0.5
    assert [(m.product_id, m.reason, m.detail) for m in report.misses] == [
        ("B", "matched_other", "C")
    ]
    assert [(f.product_id, f.shows) for f in report.false_tags] == [("C", "B")]
    assert (report.lookalike_tagged, report.lookalike_correct) == (1, 0)


def test_a_distractor_tagged_is_named_and_untracked_products_are_missed() -> None:
    tracks = [track("ball", BOTTOM_LEFT, 0, 2000), track("a", TOP_LEFT, 0, 1000)]
    tags = [Tag("v", "ball", "A", 0, 1900)]
    report = score({"v": truth()}, tracks, tags, {})
    # The ball's tag names a product that is in the video: the pair counts as correct,
    # but the tag shows a distractor.
    assert report.correct_pairs == 1
    assert report.false_tags == []
    assert [(m.product_id, m.reason) for m in report.misses] == [("B", "not_tracked")]


def test_a_tag_at_the_wrong_moment_is_not_on_time() -> None:
    tracks = [track("a", TOP_LEFT, 0, 1000)]
    tags = [Tag("v", "a", "B", 0, 400)]  # B is only on screen from 1 s
    report = score({"v": truth()}, tracks, tags, {})
    assert report.span_precision == 0.0
    assert report.false_tags == []  # B is in the video: product-level it is right


def test_a_tracked_product_left_untagged_is_not_matched() -> None:
    tracks = [track("a", TOP_LEFT, 0, 1000)]
    report = score({"v": truth()}, tracks, [], {})
    assert report.recall == 0.0
    assert {(m.product_id, m.reason, m.track_ids) for m in report.misses} == {
        ("A", "not_matched", ("a",)),  # names the track, so its judgement can be shown
        ("B", "not_tracked", ()),
    }
    assert report.precision == 1.0  # nothing tagged, nothing wrong


def test_a_track_far_from_every_object_shows_nothing() -> None:
    far = track("x", (0.45, 0.0, 0.1, 0.1), 0, 1000)
    report = score({"v": truth()}, [far], [Tag("v", "x", "Z", 0, 900)], {})
    assert [(f.product_id, f.shows) for f in report.false_tags] == [("Z", "nothing")]
    assert report.tracks == 1
    assert report.tracks_on_products == 0
