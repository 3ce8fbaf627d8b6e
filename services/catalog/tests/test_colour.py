"""The colour descriptor: unit vectors whose dot product says how alike two pictures'
colours are, centre first, tolerant of a little light."""

from __future__ import annotations

import numpy as np
import pytest
from PIL.Image import Image, fromarray

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


@pytest.mark.parametrize("side", [56, 224, 448, 896])
def test_an_image_is_binned_from_the_means_of_its_blocks(side: int) -> None:
    """The descriptor reads the image averaged down to 56 px: each value is the mean of
    its block (computed here the slow, obvious way), for every side it takes."""
    rng = np.random.default_rng(side)
    batch = rng.integers(0, 256, (3, side, side, 3), dtype=np.uint8)
    k = side // 56
    expected = batch.reshape(3, 56, k, 56, k, 3).astype(np.float64).mean(axis=(2, 4)) / 255.0

    np.testing.assert_allclose(colour._downsampled(batch), expected, rtol=1e-6)


def test_sides_whose_block_sums_would_overflow_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 896 px"):
        colour.describe(np.zeros((1, 952, 952, 3), np.uint8))


def test_sizes_it_cannot_bin_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 56"):
        colour.describe(np.zeros((1, 100, 100, 3), np.uint8))


# --- object colour: the object's pixels only ------------------------------------------------

GREY, TEAL, WHITE, RED = (128, 128, 128), (0, 128, 128), (235, 235, 235), (200, 30, 30)


def object_on(background: tuple[int, int, int], body: tuple[int, int, int], share: float) -> Image:
    """A square `body` filling `share` of the side, centred on `background`."""
    picture = patch(background, 256)
    rim = round(256 * (1 - share) / 2)
    picture[rim : 256 - rim, rim : 256 - rim] = body
    return fromarray(picture)


def object_similarity(studio: Image, crop: Image) -> float:
    shot = colour.object_colour(studio, "studio", centre=0.4)
    seen = colour.object_colour(crop, "crop", centre=0.4)
    return float(shot @ seen)


def test_a_product_on_another_background_keeps_its_object_colour() -> None:
    studio = object_on(WHITE, GREY, 0.5)  # a grey product on a white backdrop
    on_a_red_table = object_on(RED, GREY, 0.7)
    assert object_similarity(studio, on_a_red_table) > 0.95
    # The whole-picture descriptor sees mostly the backgrounds, which differ.
    whole = colour.describe(
        np.stack(
            [np.asarray(studio.resize((224, 224))), np.asarray(on_a_red_table.resize((224, 224)))]
        )
    )
    assert float(whole[0] @ whole[1]) < 0.8


def test_another_colourway_disagrees_in_object_colour() -> None:
    studio = object_on(WHITE, GREY, 0.5)
    assert object_similarity(studio, object_on(RED, TEAL, 0.7)) < 0.3


def test_a_shot_without_a_plain_backdrop_is_described_whole() -> None:
    uniform = fromarray(patch(GREY, 256))
    vector = colour.object_colour(uniform, "studio", centre=0.4)
    assert np.isfinite(vector).all()
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    assert object_similarity(uniform, object_on(RED, GREY, 0.7)) > 0.95
