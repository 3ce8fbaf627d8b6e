"""Pixels in and out: cutting a crop out of a frame, encoding it as JPEG (OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np

from vitrine_detector.domain.boxes import Box
from vitrine_detector.domain.crops import CropParams, Image, pixel_region

JPEG_QUALITY = 90


def cut_out(image: Image, box: Box, params: CropParams) -> Image:
    """The box with some context, scaled down to at most `max_side_px`; a copy, so the
    frame it came from can be freed."""
    x1, y1, x2, y2 = pixel_region(image.shape, box, params.margin)
    region = image[y1:y2, x1:x2]
    longer = max(region.shape[0], region.shape[1])
    if longer > params.max_side_px:
        scale = params.max_side_px / longer
        size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
        return np.ascontiguousarray(cv2.resize(region, size, interpolation=cv2.INTER_AREA))
    return region.copy()


def encode_jpeg(image: Image) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(encoded.tobytes())
