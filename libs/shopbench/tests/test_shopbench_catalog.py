"""The catalog is hard on purpose: look-alikes exist, and no distractor is for sale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from shopbench_helpers import SEED

from vitrine_shopbench import rng as rngs
from vitrine_shopbench.config import FULL
from vitrine_shopbench.generate import plan_dataset
from vitrine_shopbench.scene import distractor_design


def test_lookalikes_exist_and_are_what_they_claim(catalog: dict[str, Any]) -> None:
    products = {p["product_id"]: p for p in catalog["products"]}
    same_shape = same_colour = 0
    for product in products.values():
        for alike in product["lookalikes"]:
            other = products[alike["product_id"]]
            if alike["reason"] == "same_shape":
                assert other["template_id"] == product["template_id"]
                assert (other["colour"], other["pattern"]) != (
                    product["colour"],
                    product["pattern"],
                )
                same_shape += other["colour"] != product["colour"]
            else:
                assert alike["reason"] == "same_colour"
                assert other["colour"] == product["colour"]
                assert other["family"] != product["family"]
                same_colour += 1
    assert same_shape >= 1, "no pair with the same shape in different colours"
    assert same_colour >= 1, "no pair with the same colour in different shapes"


def test_studio_images_show_each_product_several_ways(small: Path, catalog: dict[str, Any]) -> None:
    for product in catalog["products"]:
        assert len(product["images"]) >= 2
        pixels = [np.asarray(Image.open(small / path).convert("RGB")) for path in product["images"]]
        assert all(p.shape == (512, 512, 3) for p in pixels)
        # Different views, not copies: the shots differ clearly.
        assert np.abs(pixels[0].astype(int) - pixels[1].astype(int)).mean() > 3
        # A plain backdrop: the corners are light and nearly flat.
        assert min(int(p[:8, :8].mean()) for p in pixels) > 150


def test_prices_are_exact_money(catalog: dict[str, Any]) -> None:
    currencies = {s["shop_id"]: s["currency"] for s in catalog["shops"]}
    for product in catalog["products"]:
        assert isinstance(product["price"]["amount_minor"], int)
        assert product["price"]["amount_minor"] > 0
        assert product["price"]["currency"] == currencies[product["shop_id"]]
        assert 100 <= product["commission_bps"] <= 8000


def test_no_distractor_looks_exactly_like_a_product() -> None:
    catalog, _ = plan_dataset(SEED, FULL, [])
    sold = {p.design for p in catalog.products}
    rng = rngs.stream(SEED, "test-distractors")
    designs = [distractor_design(rng, catalog) for _ in range(2000)]
    assert not sold & set(designs)
    # Some are near misses: a catalog shape, in a colour it is not sold in.
    shapes = {(p.design.family, p.design.geometry) for p in catalog.products}
    assert sum((d.family, d.geometry) in shapes for d in designs) > 100
