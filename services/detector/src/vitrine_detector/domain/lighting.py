"""Following a shot's light, so that the crops the matcher gets show the objects' colours.

Within one continuous shot the objects do not change colour, but the light does: a lamp
dims, a cloud passes, the camera's exposure and white balance hunt. Every such change
moves every colour the catalog compares with a product's studio shots, and colour is
often all that tells a product from its look-alike or from a thing no shop sells.

The light is followed through the sampled frames: a small colour copy of each
frame is aligned with an earlier one (the camera's shift, by phase correlation), and
per channel the ratio of the overlapping cells is how much the light changed: the
background, most of the picture, is the same surface under another light, so the cells
that agree with the median ratio are kept (objects that moved or came close do not) and
their sums compared; when too few agree, the comparison says nothing. Each frame is
compared with the shot's first frame while enough of it is still in view (no error piles
up), else with the previous frame, the changes multiplying. Crops are divided by the
light so found: every crop of a shot is shown as the shot's opening light showed it. A
scene cut starts again at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from vitrine_detector.domain.crops import Image
from vitrine_detector.domain.sampling import camera_shift, overlap

Gains = npt.NDArray[np.float32]  # one factor per channel, in the image's channel order


@dataclass(frozen=True, slots=True)
class LightingParams:
    enabled: bool = False  # CROP_FOLLOW_LIGHT
    thumbnail_columns: int = 64  # the frame is compared at this width
    min_level: float = 4.0  # cells darker than this (or ...)
    max_level: float = 243.0  # ... brighter than this, clipped, say nothing of the light
    max_gain: float = 3.0  # no channel is scaled by more than this, nor less than 1/it
    agreement: float = 0.15  # a cell agrees with a change if within ~15 % of it, per channel
    min_agreeing_share: float = 0.3  # of the usable cells, or the change is not believed

    def __post_init__(self) -> None:
        if self.thumbnail_columns < 8:
            raise ValueError("thumbnail_columns must be at least 8")
        if self.max_gain < 1:
            raise ValueError("max_gain must be at least 1")


def thumbnail(image: Image, columns: int) -> npt.NDArray[np.float32]:
    """The frame averaged down to ``columns`` cells across (rows in proportion)."""
    height, width = image.shape[:2]
    rows = max(4, round(columns * height / width))
    # Every step-th pixel (a cell still averages dozens), averaged in float so that a dark
    # picture's cells are not rounded to a few levels: ~1 ms for a 1080p frame.
    step = max(1, width // (columns * 4))
    sparse = np.ascontiguousarray(image[::step, ::step], dtype=np.float32)
    small = cv2.resize(sparse, (columns, rows), interpolation=cv2.INTER_AREA)
    return np.asarray(small, np.float32)


def light_change(
    before: npt.NDArray[np.float32], after: npt.NDArray[np.float32], p: LightingParams
) -> npt.NDArray[np.float32] | None:
    """Per channel, how much brighter ``after`` is lit than ``before`` (None: too little
    overlap or too few usable cells to tell)."""
    parts = overlap(before, after, camera_shift(before.mean(axis=2), after.mean(axis=2)))
    if parts is None:
        return None
    a, b = (part.reshape(-1, part.shape[2]) for part in parts)
    usable = ((a > p.min_level) & (a < p.max_level) & (b > p.min_level) & (b < p.max_level)).all(
        axis=1
    )
    if usable.sum() < 0.1 * len(a):
        return None
    a, b = a[usable], b[usable]
    ratios = b / a
    ratio: npt.NDArray[np.float32] = np.median(ratios, axis=0).astype(np.float32)
    # The light changes every cell alike. Where most cells disagree with the median, the
    # picture itself changed (a large object came close, the camera zoomed): no verdict.
    agreeing = (np.abs(np.log(ratios / ratio)) < p.agreement).all(axis=1)
    if agreeing.mean() < p.min_agreeing_share:
        return None
    # Brighter cells measure a ratio more precisely: weigh them by their level.
    agreed: npt.NDArray[np.float32] = (b[agreeing].sum(axis=0) / a[agreeing].sum(axis=0)).astype(
        np.float32
    )
    return agreed


class ShotLight:
    """The light of one video's current shot relative to its first frame; feed it every
    sampled frame in time order."""

    def __init__(self, params: LightingParams) -> None:
        self.params = params
        self._opening: npt.NDArray[np.float32] | None = None
        self._previous: npt.NDArray[np.float32] | None = None
        self._light = np.ones(3, np.float32)

    def gains(self, image: Image, scene_cut: bool) -> Gains:
        """The factors that show this frame's crops in the shot's opening light."""
        if not self.params.enabled:
            return np.ones(image.shape[2], np.float32)
        current = thumbnail(image, self.params.thumbnail_columns)
        if scene_cut or self._opening is None or self._previous is None:
            self._light = np.ones(image.shape[2], np.float32)
            self._opening = current
        else:
            # Against the opening frame itself while enough of it is still in view (no
            # error piles up), else from the previous frame on.
            direct = light_change(self._opening, current, self.params)
            if direct is not None:
                self._light = direct
            else:
                change = light_change(self._previous, current, self.params)
                if change is not None:
                    self._light = self._light * change
            limit = self.params.max_gain
            self._light = np.clip(self._light, 1.0 / limit, limit)
        self._previous = current
        gains: Gains = (1.0 / self._light).astype(np.float32)
        return gains


def relit(crop: Image, gains: Gains) -> Image:
    """The crop with each channel scaled by its gain (the same array when all are 1)."""
    if np.allclose(gains, 1.0, atol=1e-3):
        return crop
    scaled = crop.astype(np.float32) * gains
    out: Image = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return out
