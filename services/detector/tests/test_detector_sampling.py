"""The adaptive sampler on synthetic signatures: rates follow how much the picture changes."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine_detector.domain.sampling import (
    AdaptiveSampler,
    Reason,
    SamplingParams,
    aligned_change,
    camera_shift,
    changed_share,
    histogram_distance,
)

FPS = 30
PARAMS = SamplingParams(min_fps=1, base_fps=3, max_fps=8)


def texture(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (36, 64)).astype(np.float32)


def sample_times(signatures: list[np.ndarray], params: SamplingParams = PARAMS) -> list[float]:
    sampler = AdaptiveSampler(params)
    return [n / FPS for n, sig in enumerate(signatures) if sampler.offer(n / FPS, sig) is not None]


def test_a_still_shot_is_sampled_at_the_floor_rate() -> None:
    still = texture()
    noise = [(still + 0.01 * (n % 2)).astype(np.float32) for n in range(10 * FPS)]
    times = sample_times(noise)

    assert times == pytest.approx([float(s) for s in range(10)])


def test_a_small_moving_object_gets_the_base_rate() -> None:
    frames = []
    for n in range(6 * FPS):
        frame = texture()
        x = 2 + n // 6  # a 6x6 bright patch creeping right (under 2 % of the picture)
        frame[10:16, x : x + 6] = 1.0
        frames.append(frame)
    times = sample_times(frames)

    assert len(times) == pytest.approx(6 * 3, abs=2)
    assert max(np.diff(times)) <= 1 / 3 + 1 / FPS


def panning(columns_per_frame: float, seconds: float) -> list[np.ndarray]:
    """The camera pans over a wide textured scene (a real camera sees smooth texture)."""
    noise = np.random.default_rng(1).uniform(0.0, 1.0, (36, 1200))
    scene = ((noise + np.roll(noise, 1, 1) + np.roll(noise, 1, 0)) / 3).astype(np.float32)
    return [
        np.ascontiguousarray(scene[:, round(n * columns_per_frame) :][:, :64])
        for n in range(round(seconds * FPS))
    ]


def test_a_steady_pan_gets_the_base_rate_not_the_ceiling() -> None:
    frames = panning(1 / 3, 4.0)  # 10 columns (a sixth of the frame) a second
    assert changed_share(frames[0], frames[10], 0.06) > PARAMS.motion_threshold

    times = sample_times(frames)

    assert len(times) == pytest.approx(4 * 3, abs=2)


def test_a_fast_pan_gets_the_ceiling_rate_and_never_more() -> None:
    times = sample_times(panning(2, 4.0))  # the whole frame width in one second

    assert len(times) == pytest.approx(4 * 8, abs=3)
    assert min(np.diff(times)) >= 1 / 8 - 1e-6


def test_fast_action_in_a_still_shot_gets_the_ceiling_rate() -> None:
    frames = [texture(seed=n) for n in range(3 * FPS)]  # everything changes, no pan
    times = sample_times(frames)

    assert len(times) == pytest.approx(3 * 8, abs=3)


def test_the_camera_shift_is_found_and_removed() -> None:
    scene = np.random.default_rng(0).uniform(0, 1, (80, 120)).astype(np.float32)
    before, after = scene[10:46, 20:84], scene[12:48, 25:89]  # the camera moved

    assert camera_shift(after, before) == (-2, -5)
    assert changed_share(after, before, 0.06) > 0.5
    assert aligned_change(after, before, (-2, -5), 0.06) == 0


def test_a_shot_change_is_sampled_promptly_and_flagged() -> None:
    dark = (0.15 + texture() * 0.1).astype(np.float32)
    bright = (0.85 - texture(2) * 0.1).astype(np.float32)
    sampler = AdaptiveSampler(PARAMS)
    decisions = {}
    for n in range(2 * FPS):
        decision = sampler.offer(n / FPS, dark if n < 40 else bright)
        if decision:
            decisions[n] = decision.reason

    cut = [n for n, reason in decisions.items() if reason is Reason.SCENE_CUT]
    assert cut == [40]
    assert decisions[0] is Reason.FIRST


def test_a_shot_change_right_after_a_sample_waits_for_the_ceiling_interval() -> None:
    sampler = AdaptiveSampler(PARAMS)
    assert sampler.offer(0.0, np.zeros((36, 64), np.float32)) is not None
    assert sampler.offer(0.05, np.ones((36, 64), np.float32)) is None  # too soon
    later = sampler.offer(0.13, np.ones((36, 64), np.float32))
    assert later is not None
    assert later.scene_cut


def test_measures() -> None:
    a = np.zeros((10, 10), np.float32)
    b = a.copy()
    b[:2] = 1.0
    assert changed_share(a, b, level=0.5) == pytest.approx(0.2)
    assert changed_share(a, a + np.float32(0.01), level=0.05) == 0
    assert histogram_distance(a, a) == 0
    assert histogram_distance(a, np.ones_like(a)) == pytest.approx(1.0)


def test_rates_must_be_ordered() -> None:
    with pytest.raises(ValueError):
        SamplingParams(min_fps=4, base_fps=3, max_fps=8)
