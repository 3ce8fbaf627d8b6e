"""Ground truth is well formed and agrees with the videos and the catalog."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from vitrine_shopbench.groundtruth import MERGE_GAP_MS, complement, spans_of, union


def _well_ordered(spans: list[list[int]], duration_ms: int) -> bool:
    flat = [t for span in spans for t in span]
    return all(0 <= t <= duration_ms for t in flat) and all(a < b for a, b in pairwise(flat))


def test_boxes_lie_inside_their_frames(truths: list[dict[str, Any]]) -> None:
    boxes = 0
    for truth in truths:
        w, h = truth["width"], truth["height"]
        for frame in truth["frames"]:
            assert 0 <= frame["index"] < truth["frame_count"]
            for item in frame["boxes"]:
                x1, y1, x2, y2 = item["box"]
                assert 0 <= x1 < x2 <= w, (truth["video_id"], item)
                assert 0 <= y1 < y2 <= h, (truth["video_id"], item)
                assert 0 < item["visible"] <= 1
                boxes += 1
    assert boxes > 50  # the check above ran on real content


def test_spans_lie_inside_the_duration_and_are_ordered(truths: list[dict[str, Any]]) -> None:
    for truth in truths:
        duration = truth["duration_ms"]
        assert duration == round(truth["frame_count"] * 1000 / truth["fps"])
        for group in ("products", "objects"):
            for item in truth[group]:
                assert item["spans_ms"], item
                assert _well_ordered(item["spans_ms"], duration), item
        assert _well_ordered(truth["no_product_spans_ms"], duration)


def test_every_video_shows_a_product_and_a_stretch_without_any(
    truths: list[dict[str, Any]],
) -> None:
    for truth in truths:
        assert truth["products"], truth["video_id"]
        assert truth["no_product_spans_ms"], truth["video_id"]
        for quiet in truth["no_product_spans_ms"]:
            for product in truth["products"]:
                for span in product["spans_ms"]:
                    assert span[1] <= quiet[0] or span[0] >= quiet[1]


def test_products_are_catalog_products_and_distractors_are_not(
    truths: list[dict[str, Any]], catalog: dict[str, Any]
) -> None:
    known = {p["product_id"] for p in catalog["products"]}
    for truth in truths:
        for item in truth["objects"]:
            if item["kind"] == "product":
                assert item["product_id"] in known
            else:
                assert item["kind"] == "distractor"
                assert item["product_id"] is None
        assert {p["product_id"] for p in truth["products"]} == {
            o["product_id"] for o in truth["objects"] if o["kind"] == "product"
        }


def test_boxes_agree_with_spans(truths: list[dict[str, Any]]) -> None:
    """A sampled frame with a product well in view falls inside one of its spans."""
    for truth in truths:
        spans = {p["product_id"]: p["spans_ms"] for p in truth["products"]}
        for frame in truth["frames"]:
            for item in frame["boxes"]:
                x1, y1, x2, y2 = item["box"]
                big = min(x2 - x1, y2 - y1) >= 12
                if item["product_id"] and item["visible"] >= 0.3 and big:
                    t = frame["time_ms"]
                    assert any(s <= t < e for s, e in spans[item["product_id"]]), (frame, item)


def test_spans_merge_short_gaps_only() -> None:
    # 25 fps: a frame lasts 40 ms.
    assert spans_of([0, 1, 2], 25) == [[0, 120]]
    assert spans_of([0, 1, 5], 25) == [[0, 240]]  # 120 ms gap < MERGE_GAP_MS
    far = 2 + MERGE_GAP_MS // 40 + 2
    assert spans_of([0, 1, far], 25) == [[0, 80], [far * 40, far * 40 + 40]]
    assert union([[500, 900], [0, 100], [950, 1000]]) == [[0, 100], [500, 1000]]
    assert complement([[1000, 2000]], 5000) == [[0, 1000], [2000, 5000]]
    assert complement([[0, 4800]], 5000) == []  # 200 ms left: too short to count
