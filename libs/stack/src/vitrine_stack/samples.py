"""Sample products and detected-object crops made from real photos that ship with
scikit-image (no download). Crops are cropped, scaled, rotated and re-lit copies: never
the pixels the catalog indexed, the way a frame of a video never is.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from skimage import data as skdata


@dataclass(frozen=True, slots=True)
class SampleProduct:
    key: str
    title: str
    photo: Callable[[], np.ndarray]


SAMPLE_PRODUCTS: tuple[SampleProduct, ...] = (
    SampleProduct("coffee", "Espresso cup and saucer", skdata.coffee),
    SampleProduct("rocket", "Launch pad rocket print", skdata.rocket),
    SampleProduct("astronaut", "Astronaut portrait poster", skdata.astronaut),
    SampleProduct("chelsea", "Tabby cat cushion", skdata.chelsea),
    SampleProduct(
        "motorcycle",
        "Sport motorcycle scale model",
        lambda: skdata.stereo_motorcycle()[0],  # type: ignore[no-untyped-call]
    ),
)

# Things a camera sees that no shop sells.
DISTRACTORS: tuple[tuple[str, Callable[[], np.ndarray]], ...] = (
    ("brick wall", skdata.brick),
    ("grass", skdata.grass),
)


def to_rgb(array: np.ndarray) -> Image.Image:
    image = Image.fromarray(array)
    return image.convert("RGB")


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def studio_images(product: SampleProduct) -> list[bytes]:
    """Two catalog shots of a product: the photo, and a mirrored, slightly tighter one."""
    photo = to_rgb(product.photo())
    width, height = photo.size
    tighter = ImageOps.mirror(photo).crop(
        (width // 20, height // 20, width - width // 20, height - height // 20)
    )
    return [jpeg(photo), jpeg(tighter)]


def video_crops(array: np.ndarray, count: int, seed: int) -> list[bytes]:
    """`count` crops of one object as a detector would cut them from successive frames:
    off-centre, smaller, a little rotated, re-lit, blurred and recompressed."""
    rng = np.random.default_rng(seed)
    photo = to_rgb(array)
    width, height = photo.size
    crops = []
    for _ in range(count):
        keep = rng.uniform(0.72, 0.9)
        crop_w, crop_h = int(width * keep), int(height * keep)
        left = int(rng.uniform(0, width - crop_w))
        top = int(rng.uniform(0, height - crop_h))
        view = photo.crop((left, top, left + crop_w, top + crop_h))
        view = view.rotate(
            float(rng.uniform(-8, 8)),
            resample=Image.Resampling.BILINEAR,
            expand=False,
            fillcolor=(128, 128, 128),
        )
        scale = rng.uniform(0.35, 0.6)
        view = view.resize((max(32, int(crop_w * scale)), max(32, int(crop_h * scale))))
        view = ImageEnhance.Brightness(view).enhance(float(rng.uniform(0.75, 1.3)))
        view = ImageEnhance.Contrast(view).enhance(float(rng.uniform(0.85, 1.15)))
        view = view.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 1.2))))
        crops.append(jpeg(view, quality=int(rng.integers(60, 85))))
    return crops
