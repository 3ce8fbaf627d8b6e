"""The catalog: shops, products made of shape templates and colourways, look-alikes, and
studio images (plain background, several angles, scales and lights per product).

Look-alikes are made on purpose, two ways:
- same shape, different colourway: one shape template sold in 2-3 colours or patterns;
- same colour, different shape: body colours come from a short palette and are reused
  across families, so a navy mug, a navy cap and a navy bag all exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vitrine_shopbench import rng as rngs
from vitrine_shopbench.palette import COLOURS, EMBLEMS, PATTERNS, RGB
from vitrine_shopbench.shapes import PRODUCT_FAMILIES, Design, render

STUDIO_SIZE = 512
_CURRENCIES: tuple[tuple[str, float], ...] = (
    # currency, minor units per "dollar" of list price (ISO 4217 minor-unit digits included)
    ("EUR", 100.0),
    ("USD", 100.0),
    ("GBP", 100.0),
    ("JPY", 150.0),
    ("KWD", 300.0),
)
_PRICE_RANGE: dict[str, tuple[float, float]] = {
    "mug": (9, 29),
    "bottle": (12, 45),
    "sneaker": (49, 180),
    "bag": (25, 140),
    "lamp": (30, 160),
    "box": (8, 60),
    "cap": (12, 40),
    "vase": (18, 90),
}
_MODEL_NAMES: tuple[str, ...] = (
    "Aster", "Brio", "Cove", "Dune", "Ember", "Fjord", "Gale", "Haven", "Iris", "Juno",
    "Kite", "Loom", "Mesa", "Nook", "Onyx", "Pico", "Quill", "Rue", "Sol", "Tide",
    "Umber", "Vale", "Wren", "Yara", "Zest", "Arlo", "Bly", "Cato", "Dax", "Elm",
)  # fmt: skip
_PATTERN_WORDS: dict[str, str] = {
    "plain": "",
    "stripes-h": "striped",
    "stripes-v": "pinstripe",
    "stripes-d": "diagonal-stripe",
    "dots": "polka-dot",
    "checker": "checked",
    "gradient": "ombre",
    "texture:brick": "brick-print",
    "texture:gravel": "speckled",
    "texture:grass": "grass-print",
    "print:coffee": "coffee-print",
    "print:chelsea": "cat-print",
    "print:astronaut": "astronaut-print",
    "print:rocket": "rocket-print",
}


@dataclass(frozen=True, slots=True)
class Shop:
    shop_id: str
    name: str
    kind: str  # "first_party" (the platform's own shop) or "third_party"
    currency: str


@dataclass(frozen=True, slots=True)
class Lookalike:
    product_id: str
    reason: str  # "same_shape" (other colourway) or "same_colour" (other shape)


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    shop_id: str
    title: str
    family: str
    template_id: str  # products sharing it have the same shape
    colour: str
    pattern: str
    design: Design
    price_minor: int
    currency: str
    commission_bps: int
    stock: int
    lookalikes: tuple[Lookalike, ...] = ()
    images: tuple[str, ...] = ()  # paths relative to the dataset root


@dataclass(frozen=True, slots=True)
class Catalog:
    shops: tuple[Shop, ...]
    products: tuple[Product, ...]
    held_out: frozenset[str] = field(default_factory=frozenset)  # never in train videos

    def product(self, product_id: str) -> Product:
        for product in self.products:
            if product.product_id == product_id:
                return product
        raise KeyError(product_id)


def plan_catalog(
    seed: int, shops: int, templates: int, images_per_product: int, held_out_share: float
) -> Catalog:
    """Shops and products from the seed (no pixels yet)."""
    rng = rngs.stream(seed, "catalog")
    shop_list = [
        Shop(
            shop_id=f"s{index:02d}",
            name="Vitrine Store" if index == 0 else f"{rngs.pick(rng, _MODEL_NAMES)} & Co #{index}",
            kind="first_party" if index == 0 else "third_party",
            currency=_CURRENCIES[index % len(_CURRENCIES)][0],
        )
        for index in range(shops)
    ]
    # A short body palette makes same-colour look-alikes across shapes certain.
    body_palette = [str(name) for name in rng.permutation(list(COLOURS))[:9]]
    products: list[Product] = []
    for t in range(templates):
        family = PRODUCT_FAMILIES[t % len(PRODUCT_FAMILIES)]
        template_id = f"t{t:03d}"
        geometry = tuple(float(x) for x in rng.uniform(0.0, 1.0, 4))
        accent_name = rngs.pick(rng, list(COLOURS))
        base_pattern = rngs.pick(rng, PATTERNS)
        pattern_colour_name = rngs.pick(rng, list(COLOURS))
        scale = rngs.uniform(rng, 0.0, 1.0)
        emblem = ""
        if rng.random() < 0.5:
            letters = "".join(chr(65 + int(k)) for k in rng.integers(0, 26, 2))
            emblem = f"{rngs.pick(rng, EMBLEMS)}:{letters}"
        # 60 % of shapes sell in 2-3 colourways: same shape, different colour or pattern.
        colourways = 1 if rng.random() < 0.4 else int(rng.integers(2, 4))
        used: set[tuple[str, str]] = set()
        for _ in range(colourways):
            for _attempt in range(20):
                body_name = rngs.pick(rng, body_palette)
                pattern = base_pattern if rng.random() < 0.6 else rngs.pick(rng, PATTERNS)
                if (body_name, pattern) not in used and body_name != pattern_colour_name:
                    break
            used.add((body_name, pattern))
            design = Design(
                family=family,
                geometry=(geometry[0], geometry[1], geometry[2], geometry[3]),
                body=COLOURS[body_name],
                accent=COLOURS[accent_name],
                pattern=pattern,
                pattern_colour=COLOURS[pattern_colour_name],
                pattern_scale=scale,
                emblem=emblem,
            )
            shop = shop_list[int(rng.integers(len(shop_list)))]
            rate = dict(_CURRENCIES)[shop.currency]
            low, high = _PRICE_RANGE[family]
            price = max(1, round(rngs.uniform(rng, low, high) * rate))
            words = " ".join(w for w in (body_name, _PATTERN_WORDS[pattern], family) if w)
            model = _MODEL_NAMES[t % len(_MODEL_NAMES)]
            products.append(
                Product(
                    product_id=f"p{len(products):04d}",
                    shop_id=shop.shop_id,
                    title=f"{model} {words}",
                    family=family,
                    template_id=template_id,
                    colour=body_name,
                    pattern=pattern,
                    design=design,
                    price_minor=price,
                    currency=shop.currency,
                    commission_bps=int(rng.integers(1, 81)) * 100,
                    stock=int(rng.integers(5, 500)),
                )
            )
    products = [_with_lookalikes(p, products, images_per_product) for p in products]
    held = rng.permutation(len(products))[: round(len(products) * held_out_share)]
    held_out = frozenset(products[int(i)].product_id for i in held)
    return Catalog(tuple(shop_list), tuple(products), held_out)


def _with_lookalikes(product: Product, products: list[Product], images: int) -> Product:
    alikes = [
        Lookalike(other.product_id, "same_shape")
        for other in products
        if other.template_id == product.template_id and other.product_id != product.product_id
    ] + [
        Lookalike(other.product_id, "same_colour")
        for other in products
        if other.colour == product.colour and other.family != product.family
    ]
    paths = tuple(f"catalog/images/{product.product_id}_{k}.jpg" for k in range(images))
    return dataclasses.replace(product, lookalikes=tuple(alikes), images=paths)


_STUDIO_BACKDROPS: tuple[RGB, ...] = (
    (250, 250, 250),
    (236, 236, 236),
    (244, 238, 226),
    (226, 232, 240),
    (214, 214, 214),
)


def studio_image(seed: int, product: Product, index: int) -> Image.Image:
    """One studio shot: plain backdrop, soft shadow, its own angle, scale and light."""
    rng = rngs.stream(seed, "studio", product.product_id, index)
    # Spread the views: shot k covers its own slice of the turn, so the set of images
    # shows the product from several sides.
    count = max(1, len(product.images))
    yaw = -0.8 + 1.6 * (index + rngs.uniform(rng, 0.1, 0.9)) / count
    light = rngs.uniform(rng, -0.8, 0.8)
    fill = rngs.uniform(rng, 0.5, 0.85)
    angle = rngs.uniform(rng, -8.0, 8.0)
    gain = rngs.uniform(rng, 0.85, 1.15)
    backdrop = np.asarray(rngs.pick(rng, _STUDIO_BACKDROPS), np.float32)
    size = STUDIO_SIZE
    ramp = np.linspace(1.0, 0.9, size, dtype=np.float32)[:, None, None]
    canvas = Image.fromarray(
        np.clip(backdrop * ramp * np.ones((1, size, 1)), 0, 255).astype(np.uint8)
    )

    sprite = render(product.design, yaw, light, round(size * fill))
    image = Image.fromarray(sprite, "RGBA")
    if image.width > size * 0.9:
        k = size * 0.9 / image.width
        image = image.resize(
            (round(image.width * k), round(image.height * k)), Image.Resampling.LANCZOS
        )
    image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    x = (size - image.width) // 2 + int(rng.integers(-20, 21))
    y = (size - image.height) // 2 + int(rng.integers(-10, 11))
    shadow = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shadow).ellipse(
        [
            x + image.width * 0.1,
            y + image.height * 0.9,
            x + image.width * 0.9,
            y + image.height * 1.02,
        ],
        fill=90,
    )
    shadow = shadow.filter(ImageFilter.GaussianBlur(12))
    canvas.paste((60, 60, 60), (0, 0), shadow)
    canvas.paste(image, (x, y), image)
    lit = np.asarray(canvas, np.float32) * gain
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


def write_studio_images(seed: int, catalog: Catalog, root: Path) -> None:
    folder = root / "catalog" / "images"
    folder.mkdir(parents=True, exist_ok=True)
    for product in catalog.products:
        for index, path in enumerate(product.images):
            studio_image(seed, product, index).save(root / path, quality=92)


def catalog_json(catalog: Catalog) -> dict[str, object]:
    return {
        "shops": [
            {"shop_id": s.shop_id, "name": s.name, "kind": s.kind, "currency": s.currency}
            for s in catalog.shops
        ],
        "products": [
            {
                "product_id": p.product_id,
                "shop_id": p.shop_id,
                "title": p.title,
                "family": p.family,
                "template_id": p.template_id,
                "colour": p.colour,
                "pattern": p.pattern,
                "price": {"amount_minor": p.price_minor, "currency": p.currency},
                "commission_bps": p.commission_bps,
                "stock": p.stock,
                "images": list(p.images),
                "lookalikes": [
                    {"product_id": a.product_id, "reason": a.reason} for a in p.lookalikes
                ],
                "held_out_from_train": p.product_id in catalog.held_out,
            }
            for p in catalog.products
        ],
    }
