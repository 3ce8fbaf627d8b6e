"""Every family draws, and turning an object changes what is seen."""

from __future__ import annotations

import numpy as np
import pytest

from vitrine_shopbench.palette import COLOURS
from vitrine_shopbench.shapes import DISTRACTOR_FAMILIES, PRODUCT_FAMILIES, Design, render


@pytest.mark.parametrize("family", PRODUCT_FAMILIES + DISTRACTOR_FAMILIES)
def test_family_draws_a_solid_object_that_turns(family: str) -> None:
    design = Design(
        family,
        (0.5, 0.5, 0.5, 0.5),
        COLOURS["navy"],
        COLOURS["white"],
        "stripes-v",
        COLOURS["mustard"],
        0.5,
        "star:AB",
    )
    front = render(design, 0.0, 0.2, 96)
    side = render(design, 0.9, 0.2, 96)
    assert front.shape[0] == 96
    assert front.shape[2] == 4
    coverage = (front[..., 3] > 128).mean()
    assert 0.15 < coverage < 0.98
    if front.shape == side.shape:
        assert np.abs(front.astype(int) - side.astype(int)).mean() > 1
    else:
        assert front.shape[1] != side.shape[1]


def test_colourways_differ_only_in_colour() -> None:
    navy = Design(
        "mug",
        (0.3, 0.4, 0.5, 0.6),
        COLOURS["navy"],
        COLOURS["white"],
        "plain",
        COLOURS["white"],
        0.5,
    )
    red = Design(
        "mug",
        (0.3, 0.4, 0.5, 0.6),
        COLOURS["red"],
        COLOURS["white"],
        "plain",
        COLOURS["white"],
        0.5,
    )
    a, b = render(navy, 0.3, 0.0, 128), render(red, 0.3, 0.0, 128)
    assert np.array_equal(a[..., 3], b[..., 3])  # same silhouette
    assert np.abs(a[..., :3].astype(int) - b[..., :3].astype(int)).mean() > 20
