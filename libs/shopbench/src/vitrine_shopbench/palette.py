"""Colours and surface patterns that designs are made of.

A few colours sit close on purpose (navy and royal blue, red and burgundy, cream and
beige): real catalogs sell the same item in near colourways, and a matcher must keep them
apart.
"""

from __future__ import annotations

from typing import TypeAlias

RGB: TypeAlias = tuple[int, int, int]

COLOURS: dict[str, RGB] = {
    "black": (28, 28, 30),
    "white": (236, 236, 232),
    "grey": (128, 130, 134),
    "navy": (28, 38, 86),
    "royal blue": (42, 78, 178),
    "sky blue": (120, 180, 226),
    "teal": (20, 128, 128),
    "forest green": (34, 100, 52),
    "olive": (118, 120, 48),
    "mustard": (214, 168, 38),
    "orange": (232, 110, 30),
    "red": (196, 32, 38),
    "burgundy": (118, 22, 44),
    "pink": (236, 140, 172),
    "purple": (110, 56, 150),
    "brown": (110, 70, 40),
    "beige": (212, 190, 150),
    "cream": (240, 228, 196),
}

# Colours the catalog never sells in: near-miss distractors (a catalog shape in an unsold
# colour) are drawn from these, so "same shape" alone never proves a product.
DISTRACTOR_COLOURS: dict[str, RGB] = {
    "lime": (150, 200, 40),
    "coral": (240, 110, 90),
    "lavender": (176, 150, 214),
    "turquoise": (40, 200, 190),
    "charcoal": (64, 66, 72),
}

# Surface patterns; "texture:" and "print:" read real images that ship with scikit-image.
PATTERNS: tuple[str, ...] = (
    "plain",
    "plain",
    "stripes-h",
    "stripes-v",
    "stripes-d",
    "dots",
    "checker",
    "gradient",
    "texture:brick",
    "texture:gravel",
    "texture:grass",
    "print:coffee",
    "print:chelsea",
    "print:astronaut",
    "print:rocket",
)

EMBLEMS: tuple[str, ...] = ("circle", "star", "triangle", "diamond")


def colour_name(rgb: RGB) -> str:
    for name, value in {**COLOURS, **DISTRACTOR_COLOURS}.items():
        if value == rgb:
            return name
    return "#{:02x}{:02x}{:02x}".format(*rgb)
