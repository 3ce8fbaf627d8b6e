"""Boxes in normalised image coordinates (0..1), the unit every other part speaks."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Box:
    """Corners of an axis-aligned box, normalised to the frame (0..1)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @classmethod
    def clipped(cls, x1: float, y1: float, x2: float, y2: float) -> Box:
        def unit(v: float) -> float:
            return min(1.0, max(0.0, v))

        x1, x2 = sorted((unit(x1), unit(x2)))
        y1, y2 = sorted((unit(y1), unit(y2)))
        return cls(x1, y1, x2, y2)

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    @property
    def diagonal(self) -> float:
        return math.hypot(self.width, self.height)

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.x1 + dx, self.y1 + dy, self.x2 + dx, self.y2 + dy)

    def touches_border(self, margin: float = 0.005) -> bool:
        """True when the box reaches the frame's edge: the object is probably cut off."""
        return (
            self.x1 <= margin or self.y1 <= margin or self.x2 >= 1 - margin or self.y2 >= 1 - margin
        )


def iou(a: Box, b: Box) -> float:
    """Intersection over union; 0 for boxes that do not overlap."""
    ix = min(a.x2, b.x2) - max(a.x1, b.x1)
    iy = min(a.y2, b.y2) - max(a.y1, b.y1)
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def center_distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = a.center, b.center
    return math.hypot(ax - bx, ay - by)
