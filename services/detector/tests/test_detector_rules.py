"""Crop scoring and keeping, limits, failure classification, names, and the video rule."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from vitrine_detector.domain.boxes import Box
from vitrine_detector.domain.crops import (
    BestCrops,
    CropCandidate,
    CropParams,
    quality,
    score_view,
    sharpness,
)
from vitrine_detector.domain.keys import crop_key, video_folder
from vitrine_detector.domain.limits import (
    FailureCode,
    VideoLimits,
    VideoRejected,
    check_complete,
    sniff_container,
    undecodable,
)
from vitrine_detector.domain.tracking import Observation
from vitrine_detector.domain.videos import Outcome, Step, VideoRecord, next_step
from vitrine_detector.pipeline import spread
from vitrine_runtime.media import validate_key

P = CropParams(per_track=3, min_gap_s=0.5)
PIXELS = np.zeros((1, 1, 3), np.uint8)


def candidate(t: float, q: float) -> CropCandidate:
    return CropCandidate(t, q, PIXELS)


def checkerboard(size: int = 200, cell: int = 8) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    board = (((x // cell) + (y // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


# --- crops -----------------------------------------------------------------------


def test_sharp_views_score_higher_than_blurred_ones() -> None:
    sharp = checkerboard()
    blurred = sharp.astype(np.float64)
    for _ in range(6):  # a box blur, a few times over
        blurred = (blurred + np.roll(blurred, 1, 0) + np.roll(blurred, 1, 1)) / 3
    whole = Box(0.0, 0.0, 1.0, 1.0)
    inner = Box(0.1, 0.1, 0.9, 0.9)

    assert sharpness(sharp) > 10 * sharpness(blurred.astype(np.uint8))
    assert score_view(sharp, inner, 0.9, P) > score_view(blurred.astype(np.uint8), inner, 0.9, P)
    # The same view against the frame's edge is probably cut off.
    assert score_view(sharp, whole, 0.9, P) < score_view(sharp, inner, 0.9, P)


def test_quality_grows_with_size_and_confidence_and_is_zero_when_too_small() -> None:
    assert quality(0.9, 20, 500.0, False, P) == 0.0
    assert quality(0.9, 60, 500.0, False, P) < quality(0.9, 160, 500.0, False, P)
    assert quality(0.5, 160, 500.0, False, P) < quality(0.9, 160, 500.0, False, P)
    assert 0 < quality(1.0, 1000, 1e9, False, P) <= 1.0


def test_best_crops_keeps_the_best_few_spread_over_time() -> None:
    best = BestCrops(P)
    for t, q in [(0.0, 0.5), (0.1, 0.6), (1.0, 0.3), (2.0, 0.4), (3.0, 0.2), (3.2, 0.7)]:
        best.offer(candidate(t, q))

    kept = [(c.t, c.quality) for c in best.crops]
    # 0.1 replaced 0.0 (too close, better); 3.2 pushed out the worst (1.0 at 0.3).
    assert kept == [(0.1, 0.6), (2.0, 0.4), (3.2, 0.7)]
    assert not best.wants(2.2, 0.39)  # near 2.0 and not better
    assert best.wants(5.0, 0.45)
    assert not best.wants(5.0, 0.1)


def test_best_crops_of_several_tracklets() -> None:
    merged = BestCrops.of(P, [candidate(0, 0.2), candidate(1, 0.9), candidate(1.1, 0.8)])
    assert [(c.t, c.quality) for c in merged.crops] == [(0, 0.2), (1, 0.9)]


# --- limits ----------------------------------------------------------------------

LIMITS = VideoLimits(max_bytes=1000, max_duration_s=60, max_pixels=1920 * 1080)


@pytest.mark.parametrize(
    ("check", "code"),
    [
        (lambda: LIMITS.check_size(1001), FailureCode.TOO_LARGE),
        (lambda: LIMITS.check_duration(60.5), FailureCode.TOO_LONG),
        (lambda: LIMITS.check_resolution(3840, 2160), FailureCode.RESOLUTION_TOO_HIGH),
        (lambda: LIMITS.check_resolution(0, 0), FailureCode.CORRUPT),
        (lambda: check_complete(None, 10.0, 30), FailureCode.CORRUPT),
        (lambda: check_complete(4.0, 10.0, 30), FailureCode.CORRUPT),
    ],
)
def test_limits_refuse_with_their_code(check: object, code: FailureCode) -> None:
    with pytest.raises(VideoRejected) as refused:
        check()  # type: ignore[operator]
    assert refused.value.code is code
    assert refused.value.reason


def test_limits_accept_what_is_within_them() -> None:
    LIMITS.check_size(1000)
    LIMITS.check_duration(60)
    LIMITS.check_resolution(1080, 1920)  # portrait 1080p: the same pixel count
    check_complete(9.9, 10.0, 30)
    check_complete(3.0, None, 30)  # nothing declared, nothing to compare


def test_a_file_is_corrupt_if_it_claims_a_container_and_unsupported_otherwise() -> None:
    mp4 = b"\x00\x00\x00\x20ftypisom" + bytes(100)
    webm = b"\x1a\x45\xdf\xa3" + bytes(100)
    assert sniff_container(mp4) == "MP4/QuickTime"
    assert sniff_container(webm) == "Matroska/WebM"
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "AVI"
    assert sniff_container(b"hello, this is text") is None
    assert sniff_container(b"") is None
    assert undecodable(mp4, "bad").code is FailureCode.CORRUPT
    assert undecodable(b"text", "bad").code is FailureCode.UNSUPPORTED


# --- names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "video_id", ["vid-1", "../../etc", "a/b", "ünïcode", "-x", ".", "x" * 128, "a b"]
)
def test_crop_keys_are_valid_store_keys_for_any_video_id(video_id: str) -> None:
    key = crop_key(video_id, "t001", 2)
    assert validate_key(key) == key
    assert key.startswith("crops/")
    assert key.endswith("/t001-2.jpg")


def test_distinct_video_ids_get_distinct_folders() -> None:
    assert video_folder("vid-1") == "vid-1"
    assert video_folder("a/b") != video_folder("a_b")
    assert video_folder("a b") != video_folder("a_b")


# --- the video rule --------------------------------------------------------------


def record(outcome: Outcome) -> VideoRecord:
    return VideoRecord("v", "c", "media://v.mp4", True, outcome, uuid.uuid4())


@pytest.mark.parametrize(
    ("existing", "consent", "step"),
    [
        (None, True, Step.PROCESS),
        (None, False, Step.RECORD_NO_CONSENT),
        (Outcome.SKIPPED_NO_CONSENT, True, Step.PROCESS),
        (Outcome.SKIPPED_NO_CONSENT, False, Step.RECORD_NO_CONSENT),
        (Outcome.PROCESSED, True, Step.ALREADY_DONE),
        (Outcome.FAILED, True, Step.ALREADY_DONE),
        (Outcome.PROCESSED, False, Step.CONSENT_WITHDRAWN),
    ],
)
def test_what_happens_to_a_video_asked_about_again(
    existing: Outcome | None, consent: bool, step: Step
) -> None:
    assert next_step(record(existing) if existing else None, consent) is step


def test_boxes_are_spread_over_the_whole_track() -> None:
    observations = [Observation(n / 10, Box(0, 0, 0.1, 0.1), 0.9) for n in range(100)]
    picked = spread(observations, 5)
    assert [o.t for o in picked] == [0.0, 2.5, 5.0, 7.4, 9.9]
    assert spread(observations[:3], 5) == tuple(observations[:3])
