"""Which decoded frames the detector looks at: few when nothing moves, more when it does.

Running the detector on every frame wastes most of the work: consecutive frames are
nearly identical. The sampler keeps a floor rate (so a still object is still seen), a
normal rate when the picture changes (an object moves or enters, the camera pans), and
a ceiling rate when things move fast: much of the picture changes *beyond* the camera's
own motion, or the camera moves fast. A steady pan alone does not ask for more: the
tracker predicts where each object went. A shot change is sampled at once and flagged so
the tracker does not join objects across it.

Each frame is judged by its *signature*: a small, block-averaged greyscale copy that
costs almost nothing to make from the luma plane. Change is the share of the picture
that changed since the last sample, not a mean over the frame, so that a small object
entering a still shot counts as much as it should; the camera's motion is the shift
that best aligns the two signatures (phase correlation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

Signature = npt.NDArray[np.float32]  # small greyscale image, values 0..1

_EPS_S = 1e-3  # frame times are rounded to the stream's time base
_HIST_BINS = 16


@dataclass(frozen=True, slots=True)
class SamplingParams:
    min_fps: float = 1.0  # a sample at least this often, even in a still shot
    base_fps: float = 2.0  # when the picture changes (objects move, the camera pans)
    max_fps: float = 6.0  # never more often, however much it changes
    change_level: float = 0.06  # luma change (0..1) of one signature cell that counts
    still_threshold: float = 0.004  # share of the picture changed: below, the shot is still
    motion_threshold: float = 0.3  # share changed, camera motion removed: ceiling rate
    fast_pan: float = 0.75  # camera speed (frame sizes a second) that asks for the ceiling
    scene_cut_threshold: float = 0.4  # histogram distance (0..1) between frames: a new shot

    def __post_init__(self) -> None:
        if not 0 < self.min_fps <= self.base_fps <= self.max_fps:
            raise ValueError("need 0 < min_fps <= base_fps <= max_fps")
        if not 0 <= self.still_threshold <= self.motion_threshold:
            raise ValueError("need 0 <= still_threshold <= motion_threshold")


class Reason(StrEnum):
    FIRST = "first"
    FLOOR = "floor"
    CHANGE = "change"
    MOTION = "motion"
    SCENE_CUT = "scene_cut"


@dataclass(frozen=True, slots=True)
class SampleDecision:
    reason: Reason

    @property
    def scene_cut(self) -> bool:
        return self.reason is Reason.SCENE_CUT


def changed_share(a: Signature, b: Signature, level: float) -> float:
    """Share (0..1) of the signature's cells whose luma changed by `level` or more."""
    return float(np.mean(np.abs(a - b) >= level))


def camera_shift(a: Signature, b: Signature) -> tuple[int, int]:
    """The (rows, columns) shift d for which a[y, x] best matches b[y - dy, x - dx]."""
    spectrum = np.fft.rfft2(a - a.mean()) * np.conj(np.fft.rfft2(b - b.mean()))
    spectrum /= np.abs(spectrum) + 1e-9
    correlation = np.fft.irfft2(spectrum, s=a.shape)
    dy, dx = np.unravel_index(int(np.argmax(correlation)), a.shape)
    rows, cols = a.shape
    return (
        int(dy) - rows if dy > rows // 2 else int(dy),
        int(dx) - cols if dx > cols // 2 else int(dx),
    )


def overlap(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], shift: tuple[int, int]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]] | None:
    """The cells of a and b that show the same place once b is moved by `shift` onto a
    (camera_shift's), or None when less than half of each side overlaps."""
    dy, dx = shift
    rows, cols = a.shape[:2]
    if abs(dy) >= rows // 2 or abs(dx) >= cols // 2:
        return None
    a_part = a[max(dy, 0) : rows + min(dy, 0), max(dx, 0) : cols + min(dx, 0)]
    b_part = b[max(-dy, 0) : rows + min(-dy, 0), max(-dx, 0) : cols + min(-dx, 0)]
    return a_part, b_part


def aligned_change(a: Signature, b: Signature, shift: tuple[int, int], level: float) -> float:
    """Share of the overlap that changed once b is moved by `shift` onto a."""
    parts = overlap(a, b, shift)
    if parts is None:
        return changed_share(a, b, level)  # too little overlap to say anything
    return changed_share(*parts, level)


def luma_histogram(signature: Signature) -> npt.NDArray[np.float64]:
    """Share of the signature's cells in each of the luma bins (bincount: np.histogram
    costs ten times more, and this runs on every decoded frame)."""
    bins = np.minimum((signature * _HIST_BINS).astype(np.intp), _HIST_BINS - 1)
    return np.bincount(bins.ravel(), minlength=_HIST_BINS) / signature.size


def histogram_distance(a: Signature, b: Signature) -> float:
    """Total-variation distance (0..1) of the luma histograms: high across a shot change,
    low under camera motion within one shot."""
    return _histogram_distance(luma_histogram(a), luma_histogram(b))


def _histogram_distance(ha: npt.NDArray[np.float64], hb: npt.NDArray[np.float64]) -> float:
    return float(0.5 * np.abs(ha - hb).sum())


class AdaptiveSampler:
    """Feed every decoded frame in time order; it answers whether to run the detector."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params
        self._last_t: float | None = None
        self._last_sampled: Signature | None = None
        self._previous: Signature | None = None
        self._previous_histogram: npt.NDArray[np.float64] | None = None
        self._cut_pending = False

    def offer(self, t: float, signature: Signature) -> SampleDecision | None:
        p = self.params
        previous, self._previous = self._previous, signature
        histogram = luma_histogram(signature)
        previous_histogram, self._previous_histogram = self._previous_histogram, histogram
        if self._last_t is None or self._last_sampled is None:
            return self._take(t, signature, Reason.FIRST)
        if signature.shape != self._last_sampled.shape or previous is None:
            self._cut_pending = True  # resolution changed mid-stream: treat as a new shot
        elif (
            previous_histogram is not None
            and _histogram_distance(previous_histogram, histogram) >= p.scene_cut_threshold
        ):
            # Judged frame to frame: over a longer stretch, motion alone changes a lot.
            self._cut_pending = True
        since = t - self._last_t + _EPS_S
        if since < 1.0 / p.max_fps:
            return None
        if self._cut_pending:
            return self._take(t, signature, Reason.SCENE_CUT)
        change = changed_share(self._last_sampled, signature, p.change_level)
        if change >= p.motion_threshold and self._moves_fast(signature, since):
            return self._take(t, signature, Reason.MOTION)
        if since >= 1.0 / p.base_fps and change >= p.still_threshold:
            return self._take(t, signature, Reason.CHANGE)
        if since >= 1.0 / p.min_fps:
            return self._take(t, signature, Reason.FLOOR)
        return None

    def _moves_fast(self, signature: Signature, since: float) -> bool:
        """Much changed: is it more than a steady camera move the tracker can follow?"""
        assert self._last_sampled is not None
        p = self.params
        dy, dx = camera_shift(signature, self._last_sampled)
        rows, cols = signature.shape
        if max(abs(dy) / rows, abs(dx) / cols) / since >= p.fast_pan:
            return True
        left = aligned_change(signature, self._last_sampled, (dy, dx), p.change_level)
        return left >= p.motion_threshold

    def _take(self, t: float, signature: Signature, reason: Reason) -> SampleDecision:
        self._last_t = t
        self._last_sampled = signature
        self._cut_pending = False
        return SampleDecision(reason)
