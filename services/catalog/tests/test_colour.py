"""The colour descriptor: unit vectors whose dot product says how alike two pictures'
colours are, centre first, tolerant of a little light."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine_catalog.adapters import colour


def patch(rgb: tuple[int, int, int], side: int = 224) -> np.ndarray:
    return np.full((side, side, 3), rgb, np.uint8)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    vectors = colour.describe(np.stack([a, b]))
    return float(vectors[0] @ vectors[1])


def test_descriptors_are_non_negative_unit_vectors() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    vectors = colour.describe(batch)
    assert vectors.shape == (3, colour.DIMENSION)
    assert (vectors >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_other_colours_score_low_and_other_light_scores_high() -> None:
    teal, grey, darker_teal = (0, 128, 128), (128, 128, 128), (0, 112, 112)
    assert similarity(patch(teal), patch(teal)) == pytest.approx(1.0, abs=1e-5)
    assert similarity(patch(teal), patch(darker_teal)) > 0.8
    assert similarity(patch(teal), patch(grey)) < 0.3


def test_the_centre_counts_more_than_the_border() -> None:
    red, blue = (200, 30, 30), (30, 30, 200)
    framed = patch(blue)
    framed[33:191, 33:191] = red  # a red object on a blue background, half the pixels each
    assert abs((framed == red).all(axis=2).mean() - 0.5) < 0.01
    assert similarity(framed, patch(red)) > similarity(framed, patch(blue))


def test_sizes_it_cannot_bin_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 56"):
        colour.describe(np.zeros((1, 100, 100, 3), np.uint8))
