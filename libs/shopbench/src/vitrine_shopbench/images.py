"""Real photos and textures that ship inside installed packages (nothing is downloaded).

scikit-image keeps a few images in its wheel (others in skimage.data are fetched on first
use, so this module reads the bundled files by name and never calls a fetcher).
ultralytics ships bus.jpg and zidane.jpg; where it is not installed a bundled photo stands
in, so ground truth never depends on what is installed, only pixels may.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

Array: TypeAlias = NDArray[np.float32]

# name -> (file in skimage's data dir, is colour)
_SKIMAGE_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "hubble": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "motorcycle": "motorcycle_left.png",
    "retina": "retina.jpg",
    "camera": "camera.png",
    "moon": "moon.png",
    "page": "page.png",
    "coins": "coins.png",
    "text": "text.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "logo": "logo.png",
}
_ULTRALYTICS_FILES: dict[str, tuple[str, str]] = {
    # name -> (asset file, stand-in from skimage when ultralytics is absent)
    "bus": ("bus.jpg", "astronaut"),
    "zidane": ("zidane.jpg", "coffee"),
}

PHOTOS: tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble",
    "ihc",
    "motorcycle",
    "retina",
    "bus",
    "zidane",
    "camera",
    "moon",
    "page",
    "coins",
)
TEXTURES: tuple[str, ...] = ("brick", "grass", "gravel")


def _skimage_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def _ultralytics_assets() -> Path | None:
    # Located, not imported: importing ultralytics would pull in torch.
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "assets"
    return folder if folder.is_dir() else None


def source_of(name: str) -> str:
    """Where a named photo comes from on this machine (recorded in the manifest)."""
    if name in _ULTRALYTICS_FILES:
        assets = _ultralytics_assets()
        asset, stand_in = _ULTRALYTICS_FILES[name]
        if assets is not None and (assets / asset).exists():
            return f"ultralytics/assets/{asset}"
        return f"skimage/data/{_SKIMAGE_FILES[stand_in]} (stand-in: ultralytics absent)"
    return f"skimage/data/{_SKIMAGE_FILES[name]}"


@functools.cache
def photo(name: str) -> Image.Image:
    """An RGB photo by name."""
    if name in _ULTRALYTICS_FILES:
        assets = _ultralytics_assets()
        asset, stand_in = _ULTRALYTICS_FILES[name]
        if assets is not None and (assets / asset).exists():
            with Image.open(assets / asset) as image:
                return image.convert("RGB")
        return ImageOps.mirror(photo(stand_in))
    with Image.open(_skimage_dir() / _SKIMAGE_FILES[name]) as file:
        file.load()
        if file.mode not in ("RGBA", "LA", "P"):
            return file.convert("RGB")
        # Transparent pixels (the logo) go on white.
        rgba = file.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")


@functools.cache
def grey(name: str) -> Array:
    """A photo or texture as luminance in [0, 1], float32 (H, W)."""
    return np.asarray(photo(name).convert("L"), dtype=np.float32) / 255.0


@functools.cache
def colour(name: str) -> Array:
    """A photo as RGB in [0, 255], float32 (H, W, 3)."""
    return np.asarray(photo(name), dtype=np.float32)
