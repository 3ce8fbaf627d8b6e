"""The pipeline on videos encoded here and decoded by PyAV, with the colour detector."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from detector_videos import (
    CYAN,
    MAGENTA,
    ColourDetector,
    Square,
    encode,
    one_square_video,
    scene,
)

from vitrine_detector.adapters.decoder import PyAVSource
from vitrine_detector.domain.lighting import LightingParams
from vitrine_detector.domain.limits import FailureCode, VideoLimits, VideoRejected
from vitrine_detector.pipeline import PipelineParams, PipelineResult, detect_objects

LIMITS = VideoLimits(max_bytes=100_000_000, max_duration_s=60, max_pixels=1920 * 1080)


def run(
    video: bytes,
    detector: ColourDetector | None = None,
    params: PipelineParams | None = None,
    **decoder: bool,
) -> PipelineResult:
    with PyAVSource(video, LIMITS, **decoder) as source:
        return detect_objects(
            source, detector or ColourDetector(), params or PipelineParams(), LIMITS
        )


def test_one_object_on_screen_for_seconds_is_one_track_with_its_time_span() -> None:
    video, square = one_square_video()
    detector = ColourDetector()
    result = run(video, detector)

    assert len(result.objects) == 1
    (found,) = result.objects
    assert found.track.label == "magenta"
    # On screen from 1.0 s to 4.5 s; samples come at least twice a second while it moves.
    assert 1.0 <= found.track.first_t <= 1.2
    assert 3.9 <= found.track.last_t < 4.5
    # The boxes follow the square.
    for seen in found.boxes:
        corner = square.corner_at(seen.t)
        assert corner is not None
        assert seen.box.x1 == pytest.approx(corner[0], abs=0.02)
        assert seen.box.y1 == pytest.approx(corner[1], abs=0.03)
    # The best crops show the square, at different moments.
    assert 2 <= len(found.crops) <= 4
    times = [c.t for c in found.crops]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))
    for crop in found.crops:
        centre = crop.image[crop.image.shape[0] // 2, crop.image.shape[1] // 2]
        assert np.abs(centre.astype(int) - np.array(MAGENTA[::-1])).max() < 60


def test_only_a_fraction_of_the_frames_is_decoded_converted_and_detected() -> None:
    video, _ = one_square_video()
    detector = ColourDetector(batch_size=4)
    stats = run(video, detector).stats

    assert stats.frames_decoded < 180  # B-frames nobody refers to are not decoded
    assert stats.frames_sampled <= 6 * 8  # never more than max_fps
    assert stats.frames_sampled < stats.frames_decoded / 2
    assert stats.frames_inferred == stats.frames_sampled == sum(detector.calls)
    assert max(detector.calls) == 4
    assert len(detector.calls) < stats.frames_sampled


def test_two_objects_crossing_stay_two_tracks() -> None:
    squares = [
        Square(MAGENTA, 0.2, 0.5, 5.0, (0.05, 0.4), (0.75, 0.4)),
        Square(CYAN, 0.2, 0.5, 5.0, (0.75, 0.45), (0.05, 0.45)),
    ]
    result = run(encode(scene(squares, 5.5)))

    labels = sorted(o.track.label for o in result.objects)
    assert labels == ["cyan", "magenta"]
    for found in result.objects:
        assert found.track.first_t <= 0.7
        assert found.track.last_t >= 4.5


def test_an_object_hidden_for_a_while_is_still_one_track() -> None:
    # Out of sight for 2 s: longer than a track waits online, so stitching joins it.
    square = Square(MAGENTA, 0.25, 0.5, 6.0, (0.1, 0.3), (0.5, 0.3), hidden=((2.0, 4.0),))
    result = run(encode(scene([square], 6.5)))

    assert len(result.objects) == 1
    track = result.objects[0].track
    assert track.first_t <= 0.7
    assert track.last_t >= 5.5
    assert len(track.tracklet_ids) == 2
    assert not any(2.05 <= o.t < 3.95 for o in track.observations)


def test_a_glimpse_is_not_published() -> None:
    # On screen for 0.2 s: fewer samples and less time than a track needs.
    square = Square(MAGENTA, 0.25, 1.0, 1.2, (0.3, 0.3), (0.32, 0.3))
    result = run(encode(scene([square], 3.0)))

    assert result.objects == []
    assert result.stats.tracks_dropped == 1


def test_vp9_webm_is_decoded_too() -> None:
    video, _ = one_square_video(codec="libvpx-vp9", container="webm")
    result = run(video)

    assert [o.track.label for o in result.objects] == ["magenta"]
    assert 1.0 <= result.objects[0].track.first_t <= 1.2


@pytest.mark.parametrize(
    "decoder",
    [
        {"skip_non_reference": False},
        {"skip_non_reference": True, "skip_loop_filter": True},
    ],
)
def test_decoding_shortcuts_find_the_same_object(decoder: dict[str, bool]) -> None:
    video, _ = one_square_video()
    result = run(video, **decoder)

    assert [o.track.label for o in result.objects] == ["magenta"]
    assert 1.0 <= result.objects[0].track.first_t <= 1.2
    assert 3.9 <= result.objects[0].track.last_t < 4.5
    if not decoder["skip_non_reference"]:
        assert result.stats.frames_decoded == 180


def test_decoding_ahead_in_a_thread_gives_the_same_tracks() -> None:
    video, _ = one_square_video()

    def tracks(decode_ahead: int) -> list[tuple[str, float, float, tuple[object, ...]]]:
        params = PipelineParams(decode_ahead=decode_ahead)
        with PyAVSource(video, LIMITS) as source:
            result = detect_objects(source, ColourDetector(batch_size=4), params, LIMITS)
        return [
            (o.track.label, o.track.first_t, o.track.last_t, tuple(b.box for b in o.boxes))
            for o in result.objects
        ]

    inline = tracks(0)
    assert inline
    assert tracks(8) == inline


class _BreaksAfter:
    """A real decoded video whose decoding fails after some frames, as a damaged file's."""

    def __init__(self, source: PyAVSource, frames: int) -> None:
        self._source = source
        self._frames = frames
        self.info = source.info

    def frames(self) -> Iterator[Any]:
        for n, frame in enumerate(self._source.frames()):
            if n == self._frames:
                raise VideoRejected(FailureCode.CORRUPT, f"decoding failed after {n} frames")
            yield frame


def test_a_decoding_failure_in_the_decoding_thread_rejects_the_video() -> None:
    video, _ = one_square_video()
    detector = ColourDetector(batch_size=4)
    with PyAVSource(video, LIMITS) as source:
        broken = _BreaksAfter(source, 60)
        with pytest.raises(VideoRejected, match="after 60 frames") as rejected:
            detect_objects(broken, detector, PipelineParams(decode_ahead=4), LIMITS)
    assert rejected.value.code is FailureCode.CORRUPT
    assert detector.calls  # it failed midway, after some frames were detected


def test_crops_cut_after_the_light_fades_show_the_object_in_the_shots_opening_light() -> None:
    square = Square(MAGENTA, 0.25, 0.5, 5.5, (0.05, 0.2), (0.7, 0.5))

    def fading() -> Iterator[np.ndarray]:
        # Between 2 and 3 s the light fades by a third, tinted: the same shot, another light.
        for n, frame in enumerate(scene([square], 6.0)):
            k = min(1.0, max(0.0, (n / 30 - 2.0)))
            light = 1.0 - k * (1.0 - np.array([0.65, 0.6, 0.7]))
            yield (frame.astype(np.float32) * light).astype(np.uint8)

    video = encode(fading())
    # Tolerant enough to find the square under either light, not the grey photo.
    detector = ColourDetector(colours={"magenta": MAGENTA}, tolerance=90)

    def crop_centres(follow_light: bool) -> list[tuple[float, np.ndarray]]:
        params = PipelineParams(lighting=LightingParams(enabled=follow_light))
        return [
            (c.t, c.image[c.image.shape[0] // 2, c.image.shape[1] // 2].astype(int))
            for found in run(video, detector, params).objects
            for c in found.crops
        ]

    magenta_bgr = np.array(MAGENTA[::-1])
    as_cut, followed = crop_centres(False), crop_centres(True)
    late = [c for t, c in as_cut if t >= 3.0]
    assert late
    assert max(np.abs(c - magenta_bgr).max() for c in late) > 60
    assert any(t >= 3.0 for t, _ in followed)
    assert all(np.abs(c - magenta_bgr).max() < 40 for _, c in followed)
