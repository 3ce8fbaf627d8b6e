"""Crops of one shot shown in the shot's opening light (domain/lighting.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vitrine_detector.domain.lighting import (
    LightingParams,
    ShotLight,
    light_change,
    relit,
    thumbnail,
)

ON = LightingParams(enabled=True)


def world(seed: int = 0) -> np.ndarray:
    """A smooth textured surface larger than the frame, BGR, for the camera to pan over."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, (18, 32, 3)).astype(np.float32)
    big = np.kron(coarse, np.ones((40, 40, 1), np.float32))
    smooth: np.ndarray = cv2.GaussianBlur(big, (0, 0), 8)
    return smooth


def view(
    surface: np.ndarray, x: int, y: int, light: tuple[float, float, float] = (1.0, 1.0, 1.0)
) -> np.ndarray:
    """A 1000 x 600 frame of the surface at (x, y), under a light (per channel)."""
    frame = surface[y : y + 600, x : x + 1000] * np.array(light, np.float32)
    out: np.ndarray = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return out


def measured_change(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    change = light_change(
        thumbnail(before, ON.thumbnail_columns), thumbnail(after, ON.thumbnail_columns), ON
    )
    assert change is not None
    return change


def test_the_light_change_between_two_frames_is_found_although_the_camera_moved() -> None:
    surface = world()
    change = measured_change(view(surface, 0, 0), view(surface, 30, 20, (0.6, 0.5, 0.7)))
    assert change == pytest.approx([0.6, 0.5, 0.7], rel=0.03)


def test_an_object_entering_does_not_pass_for_a_change_of_light() -> None:
    surface = world()
    before = view(surface, 0, 0)
    after = before.copy()
    after[150:400, 300:600] = (250, 20, 240)  # a saturated object over an eighth of the frame
    assert measured_change(before, after) == pytest.approx([1.0, 1.0, 1.0], abs=0.03)


def test_the_light_change_of_a_dark_picture_is_measured_too() -> None:
    # A night scene (ShopBench's moon): cells around 3-18 of 255, still enough to tell.
    surface = world() * 0.08
    change = measured_change(view(surface, 0, 0), view(surface, 8, 4, (0.8, 0.8, 0.8)))
    assert change == pytest.approx([0.8, 0.8, 0.8], rel=0.04)


def test_a_shot_dimming_step_by_step_is_shown_in_its_opening_light() -> None:
    light = ShotLight(ON)
    surface = world()
    product = np.array((40, 160, 200), np.float32)  # BGR
    gains = np.ones(3, np.float32)
    for step in range(6):  # the camera pans while the light fades and tints
        k = step / 5
        level = (1 - 0.45 * k, 1 - 0.5 * k, 1 - 0.35 * k)
        frame = view(surface, 10 * step, 5 * step, level)
        gains = light.gains(frame, scene_cut=False)
    dim_product = np.clip(product * [0.55, 0.5, 0.65], 0, 255).astype(np.uint8)
    crop = relit(np.full((8, 8, 3), dim_product, np.uint8), gains)
    assert np.abs(dim_product.astype(int) - product).max() > 60
    assert np.abs(crop[0, 0].astype(int) - product).max() <= 8


def test_a_scene_cut_starts_again_from_the_new_shots_light() -> None:
    light = ShotLight(ON)
    surface, other = world(1), world(2)
    light.gains(view(surface, 0, 0), scene_cut=False)
    assert light.gains(view(surface, 0, 0, (0.5, 0.5, 0.5)), scene_cut=False) == pytest.approx(
        [2.0, 2.0, 2.0], rel=0.03
    )
    # A new shot, darker: its own opening light is the reference.
    assert light.gains(view(other, 0, 0, (0.4, 0.4, 0.4)), scene_cut=True) == pytest.approx(
        [1.0, 1.0, 1.0]
    )


def test_gains_are_bounded_and_a_black_frame_changes_nothing() -> None:
    light = ShotLight(LightingParams(enabled=True, max_gain=1.5))
    surface = world()
    light.gains(view(surface, 0, 0), scene_cut=False)
    assert light.gains(view(surface, 0, 0, (0.3, 0.3, 0.3)), scene_cut=False) == pytest.approx(
        [1.5, 1.5, 1.5]
    )
    # Black cells say nothing of the light: the estimate stays where it was.
    black = np.zeros((600, 1000, 3), np.uint8)
    gains = light.gains(black, scene_cut=False)
    assert np.isfinite(gains).all()
    assert gains == pytest.approx([1.5, 1.5, 1.5])


def test_switched_off_it_changes_nothing() -> None:
    light = ShotLight(LightingParams(enabled=False))
    surface = world()
    light.gains(view(surface, 0, 0), scene_cut=False)
    gains = light.gains(view(surface, 0, 0, (0.5, 0.5, 0.5)), scene_cut=False)
    assert gains == pytest.approx(np.ones(3))
    crop = np.zeros((4, 4, 3), np.uint8)
    assert relit(crop, gains) is crop


def test_relit_clips_instead_of_wrapping_around() -> None:
    crop = np.full((4, 4, 3), 200, np.uint8)
    out = relit(crop, np.array([2.0, 1.0, 0.5], np.float32))
    assert out[0, 0].tolist() == [255, 200, 100]


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="thumbnail_columns"):
        LightingParams(thumbnail_columns=4)
    with pytest.raises(ValueError, match="max_gain"):
        LightingParams(max_gain=0.5)
