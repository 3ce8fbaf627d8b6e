"""The tracker and stitcher on scripted detections with made-up appearances."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine_detector.domain.appearance import describe, similarity
from vitrine_detector.domain.boxes import Box, iou
from vitrine_detector.domain.tracking import (
    Detection,
    Tracker,
    TrackFilter,
    TrackingParams,
    stitch,
)

PARAMS = TrackingParams()


def look(seed: int) -> np.ndarray:
    """A distinct appearance (unit vector) per object; small noise per sighting."""
    v = np.random.default_rng(seed).uniform(0, 1, 64).astype(np.float32) ** 4
    return v / np.linalg.norm(v)


def noisy(appearance: np.ndarray, seed: int) -> np.ndarray:
    v = appearance + np.random.default_rng(seed).normal(0, 0.01, appearance.shape)
    v = np.clip(v, 0, None).astype(np.float32)
    return v / np.linalg.norm(v)


def square(x: float, y: float, side: float = 0.2) -> Box:
    return Box(x, y, x + side, y + side)


def test_one_object_moving_across_samples_is_one_tracklet() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    ids = []
    for n in range(12):  # 3 samples a second, moving 0.05 per sample
        t = n / 3
        ids += tracker.update(t, [Detection(square(0.05 * n, 0.3), 0.8, "object")], [noisy(a, n)])

    assert set(ids) == {0}
    (tracklet,) = tracker.finish()
    assert len(tracklet.observations) == 12


def test_a_fast_object_without_overlap_is_followed_by_appearance_and_prediction() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    ids = []
    for n in range(6):  # moves 0.15 per sample, boxes 0.12 wide: consecutive ones apart
        box = square(0.15 * n, 0.3, side=0.12)
        ids += tracker.update(n / 3, [Detection(box, 0.8, "o")], [a])

    assert iou(square(0.0, 0.3, side=0.12), square(0.15, 0.3, side=0.12)) == 0
    assert set(ids) == {0}


def test_two_crossing_objects_keep_their_identities() -> None:
    tracker = Tracker(PARAMS)
    a, b = look(1), look(2)
    assert similarity(a, b) < 0.6
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    for n in range(10):
        t = n / 4
        left = Detection(square(0.1 + 0.07 * n, 0.4), 0.9, "object")
        right = Detection(square(0.73 - 0.07 * n, 0.42), 0.9, "object")
        got = tracker.update(t, [left, right], [noisy(a, n), noisy(b, 100 + n)])
        seen[0].add(got[0])  # type: ignore[arg-type]
        seen[1].add(got[1])  # type: ignore[arg-type]

    assert len(seen[0]) == 1
    assert len(seen[1]) == 1
    assert seen[0] != seen[1]


def test_a_different_object_in_the_same_place_is_a_new_track() -> None:
    tracker = Tracker(PARAMS)
    first = tracker.update(0.0, [Detection(square(0.4, 0.4), 0.9, "o")], [look(1)])
    second = tracker.update(0.33, [Detection(square(0.41, 0.4), 0.9, "o")], [look(2)])

    assert similarity(look(1), look(2)) < PARAMS.veto_similarity
    assert first != second


def test_weak_detections_extend_tracks_but_never_start_one() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    assert tracker.update(0.0, [Detection(square(0.1, 0.1), 0.3, "o")], [a]) == [None]
    started = tracker.update(0.3, [Detection(square(0.1, 0.1), 0.9, "o")], [a])
    extended = tracker.update(0.6, [Detection(square(0.12, 0.1), 0.3, "o")], [a])

    assert started == extended == [0]
    (tracklet,) = tracker.finish()
    assert [o.t for o in tracklet.observations] == [0.3, 0.6]


def test_an_object_missing_longer_than_the_gap_is_stitched_back() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    for n in range(4):
        tracker.update(n / 3, [Detection(square(0.3 + 0.01 * n, 0.3), 0.9, "o")], [noisy(a, n)])
    for n in range(4):  # 2.5 s later, a little further on
        t = 3.5 + n / 3
        tracker.update(t, [Detection(square(0.4 + 0.01 * n, 0.3), 0.9, "o")], [noisy(a, 9 + n)])
    tracklets = tracker.finish()

    assert len(tracklets) == 2  # the online tracker gave up during the gap
    (track,) = stitch(tracklets, PARAMS)
    assert track.tracklet_ids == (0, 1)
    assert track.first_t == 0
    assert track.last_t == pytest.approx(3.5 + 1)


def test_no_stitching_across_a_shot_change_or_between_different_objects() -> None:
    tracker = Tracker(PARAMS)
    a, b = look(1), look(2)
    tracker.update(0.0, [Detection(square(0.3, 0.3), 0.9, "o")], [a])
    tracker.update(0.3, [Detection(square(0.3, 0.3), 0.9, "o")], [a])
    tracker.cut()
    tracker.update(0.6, [Detection(square(0.3, 0.3), 0.9, "o")], [a])  # same look, new shot
    tracker.update(3.0, [Detection(square(0.3, 0.3), 0.9, "o")], [b])  # other look, same shot

    assert len(stitch(tracker.finish(), PARAMS)) == 3


def test_the_track_label_is_the_most_confident_vote() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    for n, (label, conf) in enumerate([("cup", 0.9), ("bowl", 0.6), ("cup", 0.8), ("bowl", 0.6)]):
        tracker.update(n / 3, [Detection(square(0.3, 0.3), conf, label)], [a])
    (track,) = stitch(tracker.finish(), PARAMS)

    assert track.label == "cup"
    assert track.confidence == pytest.approx((0.9 + 0.6 + 0.8 + 0.6) / 4)


def test_the_filter_drops_glimpses() -> None:
    tracker = Tracker(PARAMS)
    a = look(1)
    tracker.update(0.0, [Detection(square(0.3, 0.3), 0.9, "o")], [a])
    tracker.update(0.2, [Detection(square(0.3, 0.3), 0.9, "o")], [a])
    (glimpse,) = stitch(tracker.finish(), PARAMS)

    assert not TrackFilter(min_frames=3, min_duration_s=0.5).keeps(glimpse)
    assert TrackFilter(min_frames=2, min_duration_s=0.2).keeps(glimpse)


def test_appearance_tells_colours_apart_and_ignores_position() -> None:
    frame = np.full((100, 200, 3), 128, np.uint8)
    frame[10:40, 10:40] = (0, 0, 230)  # red (BGR)
    frame[10:40, 100:130] = (0, 0, 230)
    frame[60:90, 10:40] = (230, 0, 0)  # blue
    red_1 = describe(frame, Box(0.05, 0.1, 0.2, 0.4))
    red_2 = describe(frame, Box(0.5, 0.1, 0.65, 0.4))
    blue = describe(frame, Box(0.05, 0.6, 0.2, 0.9))

    assert similarity(red_1, red_2) == pytest.approx(1.0)
    assert similarity(red_1, blue) < 0.1
    assert np.linalg.norm(red_1) == pytest.approx(1.0)
