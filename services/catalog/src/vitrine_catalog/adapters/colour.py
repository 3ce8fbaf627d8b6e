"""A colour descriptor of an image: where its pixels lie in CIELAB, centre first.

ImageNet features barely tell a grey bag from a teal one (a recoloured copy of a product
scores 0.58-0.75 against the original), yet colour is often all that separates two
colourways of one design. This descriptor is a soft histogram of the picture's colours in
CIELAB (4 lightness x 8 x 8 chroma bins), each pixel weighted by how near the centre it
is (the object, not the background, fills the middle of a crop) and spread over its
neighbouring bins (so a small lighting shift moves weight smoothly instead of flipping a
bin). The square root of the normalised histogram is a unit vector whose dot product
with another is the Bhattacharyya coefficient of the two colour distributions.

Pure numpy, computed on the same 224 px batch the network sees, ~0.2 ms an image.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

LIGHTNESS_BINS = 4
CHROMA_BINS = 8
CHROMA_RANGE = 64.0  # a* and b* binned over [-64, 64]; stronger colours land in the end bins
CENTRE_SIGMA = 0.3  # of the image side
_SIDE = 56  # the batch is averaged down to this before binning
DIMENSION = LIGHTNESS_BINS * CHROMA_BINS * CHROMA_BINS

_SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]],
    np.float32,
)
_WHITE = np.array([0.95047, 1.0, 1.08883], np.float32)


def to_lab(rgb: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """sRGB (0..1, last axis RGB) to CIELAB under D65: L in 0..100, a* and b* about -128..127."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = (linear @ _SRGB_TO_XYZ.T) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([lightness, a, b], axis=-1).astype(np.float32)


def _centre_weights(side: int) -> npt.NDArray[np.float32]:
    axis = (np.arange(side, dtype=np.float32) + 0.5) / side - 0.5
    squared = axis[:, None] ** 2 + axis[None, :] ** 2
    return np.exp(-squared / (2 * CENTRE_SIGMA**2)).reshape(-1).astype(np.float32)


_WEIGHTS = _centre_weights(_SIDE)


def describe(batch: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Colour descriptors of an ``(n, side, side, 3)`` RGB uint8 batch; ``(n, DIMENSION)``.

    ``side`` must be a multiple of 56 (the embedder's 224 is).
    """
    n, side = batch.shape[0], batch.shape[1]
    if side % _SIDE or batch.shape[2] != side:
        raise ValueError(f"colour descriptors need square images of a multiple of {_SIDE} px")
    k = side // _SIDE
    small = batch.reshape(n, _SIDE, k, _SIDE, k, 3).mean(axis=(2, 4), dtype=np.float32) / 255.0
    lab = to_lab(small).reshape(n, -1, 3)
    # Continuous bin coordinates, centred so that bin i covers [i, i + 1).
    coords = np.stack(
        [
            lab[..., 0] / 100.0 * LIGHTNESS_BINS,
            (lab[..., 1] + CHROMA_RANGE) / (2 * CHROMA_RANGE) * CHROMA_BINS,
            (lab[..., 2] + CHROMA_RANGE) / (2 * CHROMA_RANGE) * CHROMA_BINS,
        ],
        axis=-1,
    )
    sizes = np.array([LIGHTNESS_BINS, CHROMA_BINS, CHROMA_BINS])
    coords = np.clip(coords, 0.0, sizes - 1e-3) - 0.5
    low = np.floor(coords).astype(np.int64)
    frac = (coords - low).astype(np.float32)
    hist = np.zeros((n, DIMENSION), np.float32)
    rows = np.repeat(np.arange(n), lab.shape[1])
    for corner in range(8):  # trilinear: every pixel shares its weight among 8 bins
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        index = np.clip(low + offset, 0, sizes - 1)
        share = np.prod(np.where(offset == 1, frac, 1.0 - frac), axis=-1) * _WEIGHTS
        flat = (index[..., 0] * CHROMA_BINS + index[..., 1]) * CHROMA_BINS + index[..., 2]
        np.add.at(hist, (rows, flat.reshape(-1)), share.reshape(-1))
    hist /= hist.sum(axis=1, keepdims=True)
    return np.sqrt(hist, dtype=np.float32)
