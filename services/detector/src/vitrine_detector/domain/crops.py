"""Which views of a tracked object the matcher gets: the best few, spread over time.

A crop's quality is the product of how sure the detector was, how sharp the crop is
(motion blur ruins an embedding), how large it is, and whether the object is whole (a
box against the frame's edge is usually cut off). A track keeps its best K crops, at
least `min_gap_s` apart so that they show different moments (angles, lighting) rather
than K copies of one frame: the catalog matches a track on several crops.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vitrine_detector.domain.boxes import Box

Image = npt.NDArray[np.uint8]  # height x width x 3, BGR

_SHARPNESS_SIDE = 128  # sharpness is measured at about this size, so sizes compare fairly


@dataclass(frozen=True, slots=True)
class CropParams:
    per_track: int = 4
    min_gap_s: float = 0.5
    margin: float = 0.08  # context kept around the box, as a share of its size
    max_side_px: int = 512  # stored crops are scaled down to this (the matcher uses 224)
    min_side_px: int = 24  # smaller views are useless to the matcher
    full_size_px: int = 160  # a crop this large (shorter side) scores full marks for size
    sharpness_scale: float = 60.0  # Laplacian variance that scores half marks for sharpness
    cut_off_penalty: float = 0.5  # factor for a box touching the frame's edge

    def __post_init__(self) -> None:
        if self.per_track < 1:
            raise ValueError("keep at least one crop per track")


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: it holds pixels
class CropCandidate:
    t: float
    quality: float
    image: Image


def pixel_region(
    frame_shape: tuple[int, ...], box: Box, margin: float = 0.0
) -> tuple[int, int, int, int]:
    """The box (grown by `margin` of its size each side) in pixels, inside the frame."""
    height, width = frame_shape[:2]
    grow_x, grow_y = box.width * margin, box.height * margin
    x1 = max(0, int(np.floor((box.x1 - grow_x) * width)))
    y1 = max(0, int(np.floor((box.y1 - grow_y) * height)))
    x2 = min(width, int(np.ceil((box.x2 + grow_x) * width)))
    y2 = min(height, int(np.ceil((box.y2 + grow_y) * height)))
    return x1, y1, max(x1, x2), max(y1, y2)


def sharpness(region: Image) -> float:
    """Variance of the Laplacian of the region's luma (higher: sharper edges)."""
    step = max(1, max(region.shape[:2]) // _SHARPNESS_SIDE)
    small = region[::step, ::step].astype(np.float32)
    if small.shape[0] < 3 or small.shape[1] < 3:
        return 0.0
    gray = small @ np.array([0.114, 0.587, 0.299], np.float32)
    lap = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(lap.var())


def quality(
    confidence: float, shorter_side_px: int, sharpness_value: float, cut_off: bool, p: CropParams
) -> float:
    """0..1; 0 for views too small to match."""
    if shorter_side_px < p.min_side_px:
        return 0.0
    sharp = sharpness_value / (sharpness_value + p.sharpness_scale)
    size = min(1.0, shorter_side_px / p.full_size_px)
    whole = p.cut_off_penalty if cut_off else 1.0
    return float(np.clip(confidence * sharp * size * whole, 0.0, 1.0))


def score_view(image: Image, box: Box, confidence: float, p: CropParams) -> float:
    x1, y1, x2, y2 = pixel_region(image.shape, box)
    region = image[y1:y2, x1:x2]
    if region.size == 0:
        return 0.0
    side = min(region.shape[0], region.shape[1])
    return quality(confidence, side, sharpness(region), box.touches_border(), p)


class BestCrops:
    """The best `per_track` crops of one track, no two closer than `min_gap_s` in time."""

    def __init__(self, params: CropParams) -> None:
        self.params = params
        self._kept: list[CropCandidate] = []

    @property
    def crops(self) -> list[CropCandidate]:
        return sorted(self._kept, key=lambda c: c.t)

    def wants(self, t: float, quality_value: float) -> bool:
        """Whether a view of this quality at `t` would be kept (ask before cutting it out)."""
        if quality_value <= 0:
            return False
        near = [c for c in self._kept if abs(c.t - t) < self.params.min_gap_s]
        if near:
            return all(quality_value > c.quality for c in near)
        if len(self._kept) < self.params.per_track:
            return True
        return quality_value > min(c.quality for c in self._kept)

    def offer(self, candidate: CropCandidate) -> bool:
        if not self.wants(candidate.t, candidate.quality):
            return False
        near = [c for c in self._kept if abs(c.t - candidate.t) < self.params.min_gap_s]
        if near:
            self._kept = [c for c in self._kept if c not in near]
        elif len(self._kept) >= self.params.per_track:
            self._kept.remove(min(self._kept, key=lambda c: c.quality))
        self._kept.append(candidate)
        return True

    @classmethod
    def of(cls, params: CropParams, candidates: Iterable[CropCandidate]) -> BestCrops:
        """The best crops among several tracklets' (a stitched track)."""
        best = cls(params)
        for candidate in sorted(candidates, key=lambda c: (-c.quality, c.t)):
            best.offer(candidate)
        return best
