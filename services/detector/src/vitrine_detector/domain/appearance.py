"""A cheap description of what a detected object looks like, to tell objects apart.

Boxes alone confuse two objects that cross, and lose one that moves far between two
samples (samples are a fraction of a second apart). A colour histogram of the box's
centre (the edges are mostly background) separates a red mug from a blue one for a
fraction of a millisecond; similarity is the Bhattacharyya coefficient (0..1).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vitrine_detector.domain.boxes import Box

Appearance = npt.NDArray[np.float32]
Image = npt.NDArray[np.uint8]  # height x width x 3, BGR

_LEVELS = 4  # per channel: 64 colour bins
_SAMPLES_PER_SIDE = 24  # pixels read per side of the box's centre, whatever its size
_CENTRE = 0.7  # share of the box (each side) that is read


def describe(image: Image, box: Box) -> Appearance:
    """Square root of the normalised colour histogram, so a dot product is Bhattacharyya."""
    height, width = image.shape[:2]
    cx, cy = box.center
    half_w, half_h = box.width * _CENTRE / 2, box.height * _CENTRE / 2
    x1, x2 = int((cx - half_w) * width), int(np.ceil((cx + half_w) * width))
    y1, y2 = int((cy - half_h) * height), int(np.ceil((cy + half_h) * height))
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = max(x1 + 1, min(width, x2)), max(y1 + 1, min(height, y2))
    region = image[y1:y2, x1:x2]
    step_y = max(1, region.shape[0] // _SAMPLES_PER_SIDE)
    step_x = max(1, region.shape[1] // _SAMPLES_PER_SIDE)
    pixels = region[::step_y, ::step_x].reshape(-1, 3).astype(np.int32) * _LEVELS // 256
    bins = (pixels[:, 0] * _LEVELS + pixels[:, 1]) * _LEVELS + pixels[:, 2]
    counts = np.bincount(bins, minlength=_LEVELS**3).astype(np.float32)
    total = counts.sum()
    if total == 0:
        return np.full(_LEVELS**3, 1 / np.sqrt(_LEVELS**3), np.float32)
    root: Appearance = np.sqrt(counts / total).astype(np.float32)
    return root


def similarity(a: Appearance, b: Appearance) -> float:
    return float(np.clip(np.dot(a, b), 0.0, 1.0))


def blend(current: Appearance, new: Appearance, weight: float) -> Appearance:
    """Running appearance of a track: mostly what it was, partly what it looks like now."""
    mixed = (1 - weight) * current + weight * new
    norm = float(np.linalg.norm(mixed))
    return (mixed / norm).astype(np.float32) if norm > 0 else current
