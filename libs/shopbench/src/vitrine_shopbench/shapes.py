"""Procedural objects: products (mugs, bottles, sneakers, bags, lamps, boxes, caps, vases)
and things no shop sells (balls, plants, books, toy cars, clocks).

A `Design` says what an object looks like; `render` draws it as an RGBA sprite for one
view: `yaw` in [-1, 1] turns it about its vertical axis (-90 to +90 degrees: handles,
brims and box sides swing round, prints scroll across curved surfaces) and `light` in
[-1, 1] moves the key light from left to right. Masks are drawn supersampled, so edges are
anti-aliased; coordinates are in units of the sprite's height (y down, x from the left).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from vitrine_shopbench import images
from vitrine_shopbench.palette import RGB

Array: TypeAlias = NDArray[np.float32]
Coords: TypeAlias = NDArray[np.floating[Any]]  # surface coordinates, any float precision
Point: TypeAlias = tuple[float, float]

PRODUCT_FAMILIES: tuple[str, ...] = (
    "mug",
    "bottle",
    "sneaker",
    "bag",
    "lamp",
    "box",
    "cap",
    "vase",
)
DISTRACTOR_FAMILIES: tuple[str, ...] = ("ball", "plant", "book", "car", "clock")

_SUPERSAMPLE = 3


@dataclass(frozen=True, slots=True)
class Design:
    """Everything that decides an object's look; equal designs draw equal pixels."""

    family: str
    geometry: tuple[float, float, float, float]  # proportions in [0, 1], per family
    body: RGB
    accent: RGB
    pattern: str
    pattern_colour: RGB
    pattern_scale: float  # 0 = coarse, 1 = fine
    emblem: str = ""  # "" or "<shape>:<letters>", e.g. "star:AK"

    @property
    def key(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def aspect(design: Design, yaw: float) -> float:
    """Sprite width over height for a view."""
    g = design.geometry
    turn = abs(math.sin(yaw * math.pi / 2))
    if design.family == "sneaker":
        return 0.95 + 1.15 * turn
    if design.family == "car":
        return 0.9 + 0.9 * turn
    if design.family == "box":
        front = (0.45 + 0.35 * g[0]) * (0.35 + 0.65 * math.cos(yaw * math.pi / 2 * 0.9))
        side = (0.25 + 0.3 * g[2]) * turn
        return front + side + 0.08
    return {
        "mug": 1.3,
        "bottle": 0.52,
        "bag": 1.15,
        "lamp": 0.78,
        "cap": 1.25,
        "vase": 0.7,
        "ball": 1.0,
        "plant": 0.85,
        "book": 0.78,
        "clock": 1.0,
    }[design.family]


def render(design: Design, yaw: float, light: float, height: int) -> NDArray[np.uint8]:
    """Draw `design` as an RGBA sprite `height` pixels tall (straight alpha)."""
    height = max(8, int(height))
    width = max(4, round(aspect(design, yaw) * height))
    sprite = _Sprite(width, height, yaw, light)
    _DRAWERS[design.family](sprite, design)
    return sprite.rgba()


class _Sprite:
    def __init__(self, width: int, height: int, yaw: float, light: float) -> None:
        self.w, self.h = width, height
        self.aspect = width / height
        self.yaw = float(np.clip(yaw, -1.0, 1.0))
        self.turn = math.sin(self.yaw * math.pi / 2)  # -1..1, signed
        self.light = float(np.clip(light, -1.0, 1.0)) * 0.9  # radians off the view axis
        self.rgb = np.zeros((height, width, 3), np.float32)
        self.alpha = np.zeros((height, width), np.float32)
        self.x = ((np.arange(width, dtype=np.float32) + 0.5) / height)[None, :]
        self.y = ((np.arange(height, dtype=np.float32) + 0.5) / height)[:, None]

    # -- masks (float32 (h, w) in [0, 1]) ------------------------------------------------
    def _canvas(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        image = Image.new("L", (self.w * _SUPERSAMPLE, self.h * _SUPERSAMPLE), 0)
        return image, ImageDraw.Draw(image)

    def _px(self, p: Point) -> tuple[float, float]:
        scale = self.h * _SUPERSAMPLE
        return (p[0] * scale, p[1] * scale)

    def _done(self, image: Image.Image) -> Array:
        small = image.resize((self.w, self.h), Image.Resampling.BOX)
        return np.asarray(small, dtype=np.float32) / 255.0

    def polygon(self, points: Sequence[Point]) -> Array:
        image, draw = self._canvas()
        draw.polygon([self._px(p) for p in points], fill=255)
        return self._done(image)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, width: float = 0.0) -> Array:
        image, draw = self._canvas()
        a, b = self._px((min(x0, x1), min(y0, y1))), self._px((max(x0, x1), max(y0, y1)))
        if width > 0:
            stroke = max(1, round(width * self.h * _SUPERSAMPLE))
            draw.ellipse([a, b], outline=255, width=stroke)
        else:
            draw.ellipse([a, b], fill=255)
        return self._done(image)

    def rect(self, x0: float, y0: float, x1: float, y1: float, radius: float = 0.0) -> Array:
        image, draw = self._canvas()
        a, b = self._px((min(x0, x1), min(y0, y1))), self._px((max(x0, x1), max(y0, y1)))
        draw.rounded_rectangle([a, b], radius=radius * self.h * _SUPERSAMPLE, fill=255)
        return self._done(image)

    def line(self, points: Sequence[Point], width: float) -> Array:
        image, draw = self._canvas()
        stroke = max(1, round(width * self.h * _SUPERSAMPLE))
        draw.line([self._px(p) for p in points], fill=255, width=stroke, joint="curve")
        return self._done(image)

    def emblem(self, spec: str, cx: float, cy: float, size: float) -> tuple[Array, Array]:
        """An emblem (shape, letters) facing the camera at the front; foreshortened with yaw
        on round bodies by the caller through `cx` and a squeeze."""
        shape, _, letters = spec.partition(":")
        squeeze = max(0.15, math.cos(self.yaw * math.pi / 2))
        r = size / 2
        if shape == "circle":
            outline: list[Point] = [
                (cx + r * squeeze * math.cos(t), cy + r * math.sin(t))
                for t in np.linspace(0, 2 * math.pi, 40, endpoint=False)
            ]
        elif shape == "star":
            outline = [
                (
                    cx + (r if i % 2 == 0 else r * 0.45) * squeeze * math.sin(i * math.pi / 5),
                    cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5),
                )
                for i in range(10)
            ]
        elif shape == "triangle":
            outline = [
                (cx, cy - r),
                (cx + r * squeeze, cy + r * 0.8),
                (cx - r * squeeze, cy + r * 0.8),
            ]
        else:  # diamond
            outline = [(cx, cy - r), (cx + r * squeeze, cy), (cx, cy + r), (cx - r * squeeze, cy)]
        shape_mask = self.polygon(outline)
        text_mask = np.zeros_like(shape_mask)
        if letters:
            px = max(6, round(size * 0.42 * self.h * _SUPERSAMPLE))
            font = ImageFont.load_default(size=px)
            glyphs = Image.new("L", (px * (len(letters) + 1), px * 2), 0)
            ImageDraw.Draw(glyphs).text((px // 2, px // 3), letters, font=font, fill=255)
            box = glyphs.getbbox()
            if box is not None:
                glyphs = glyphs.crop(box)
                gw = max(1, round(glyphs.width * squeeze))
                glyphs = glyphs.resize((gw, glyphs.height), Image.Resampling.BILINEAR)
                image, _ = self._canvas()
                centre = self._px((cx, cy))
                image.paste(
                    glyphs,
                    (round(centre[0] - glyphs.width / 2), round(centre[1] - glyphs.height / 2)),
                )
                text_mask = self._done(image) * shape_mask
        return shape_mask, text_mask

    # -- shading and surface coordinates --------------------------------------------------
    def cylinder(self, cx: float, radius: float) -> tuple[Array, Array]:
        """Shade (1, w) of a vertical cylinder and its surface coordinate (arc length, with
        the turn of the object added so prints scroll as it rotates)."""
        t = np.clip((self.x - cx) / max(radius, 1e-3), -0.999, 0.999)
        theta = np.arcsin(t)
        return self._lambert(theta), ((theta + self.yaw * math.pi / 2) * radius).astype(np.float32)

    def _lambert(self, theta: Array) -> Array:
        diffuse = np.clip(np.cos(theta - self.light), 0.0, 1.0)
        specular = np.exp(-(((theta - self.light * 0.6) / 0.16) ** 2))
        return cast(Array, (0.38 + 0.62 * diffuse + 0.3 * specular).astype(np.float32))

    def flat(self, facing: float) -> float:
        """Brightness of a flat face whose normal points `facing` radians off the view."""
        return float(0.42 + 0.62 * max(0.0, math.cos(facing - self.light)))

    # -- paint ---------------------------------------------------------------------------
    def paint(self, mask: Array, colour: RGB | Array, shade: Array | float = 1.0) -> None:
        paint = np.asarray(colour, dtype=np.float32)
        paint = paint * (shade[..., None] if isinstance(shade, np.ndarray) else shade)
        m = mask[..., None]
        self.rgb = self.rgb * (1.0 - m) + paint * m
        self.alpha = np.maximum(self.alpha, mask)

    def rgba(self) -> NDArray[np.uint8]:
        # The paint accumulates colour premultiplied by coverage; store straight alpha.
        alpha = np.maximum(self.alpha, 1e-6)[..., None]
        rgb = np.clip(self.rgb / alpha, 0, 255)
        out = np.empty((self.h, self.w, 4), np.uint8)
        out[..., :3] = rgb.astype(np.uint8)
        out[..., 3] = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return out


def surface(design: Design, u: Coords, v: Coords) -> Array:
    """The design's surface colour at surface coordinates (u, v), in sprite-height units."""
    u, v = np.broadcast_arrays(u, v)
    body = np.asarray(design.body, np.float32)
    alt = np.asarray(design.pattern_colour, np.float32)
    freq = 4.0 + 10.0 * design.pattern_scale
    kind = design.pattern
    if kind.startswith("print:"):
        photo = images.colour(kind.split(":", 1)[1])
        scale = 260.0 + 420.0 * design.pattern_scale
        rows = (v * scale).astype(np.int64) % photo.shape[0]
        cols = (u * scale).astype(np.int64) % photo.shape[1]
        # Tinted by the body colour, so one print in two colourways stays two products.
        return cast(Array, (photo[rows, cols] * 0.55 + body * 0.45).astype(np.float32))
    if kind.startswith("texture:"):
        texture = images.grey(kind.split(":", 1)[1])
        scale = 200.0 + 400.0 * design.pattern_scale
        rows = (v * scale).astype(np.int64) % texture.shape[0]
        cols = (u * scale).astype(np.int64) % texture.shape[1]
        k = np.clip((texture[rows, cols] - 0.25) * 1.6, 0.0, 1.0)
    elif kind == "stripes-h":
        k = _square(v * freq)
    elif kind == "stripes-v":
        k = _square(u * freq)
    elif kind == "stripes-d":
        k = _square((u + v) * freq * 0.7)
    elif kind == "dots":
        fu = (u * freq) % 1.0 - 0.5
        fv = (v * freq) % 1.0 - 0.5
        k = np.clip((0.3 - np.sqrt(fu * fu + fv * fv)) * 12.0, 0.0, 1.0)
    elif kind == "checker":
        a, b = _square(u * freq * 0.5), _square(v * freq * 0.5)
        k = a * (1 - b) + b * (1 - a)
    elif kind == "gradient":
        k = np.clip(v, 0.0, 1.0)
    else:
        k = np.zeros_like(u)
    k = k[..., None]
    return cast(Array, (body * (1.0 - k) + alt * k).astype(np.float32))


def _square(x: Coords) -> Array:
    wave = 0.5 + 0.5 * np.clip(np.sin(2 * math.pi * x) * 4.0, -1.0, 1.0)
    return cast(Array, wave.astype(np.float32))


def _darker(rgb: RGB, k: float) -> RGB:
    return (int(rgb[0] * k), int(rgb[1] * k), int(rgb[2] * k))


def _paint_emblem(s: _Sprite, design: Design, cx: float, cy: float, size: float) -> None:
    if not design.emblem:
        return
    shape, letters = s.emblem(design.emblem, cx, cy, size)
    s.paint(shape, design.accent)
    s.paint(letters, design.body)


def _front_of_cylinder(s: _Sprite, cx: float, radius: float) -> tuple[float, bool]:
    """Where the front of a turning round body is seen, and whether it faces the camera."""
    angle = -s.yaw * math.pi / 2
    return cx + radius * math.sin(angle) * 0.85, math.cos(angle) > 0.3


# -- product families --------------------------------------------------------------------


def _mug(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    top_w = min(0.8, 0.52 + 0.26 * g[0])
    bottom_w = top_w * (1.0 - 0.22 * g[1])
    y_top = 0.97 - (0.68 + 0.24 * g[3])
    rim = 0.07
    side = 1.0 if s.turn >= 0 else -1.0
    reach = (0.16 + 0.14 * g[2]) * abs(s.turn)
    edge = cx + side * top_w / 2 * 0.92
    if reach > 0.02:
        ring = s.ellipse(
            edge - side * 0.08,
            y_top + 0.16,
            edge + side * reach,
            y_top + 0.16 + (0.3 + 0.2 * g[2]),
            width=0.055,
        )
        s.paint(ring, d.body, s.flat(side * 1.2))
    body = np.maximum(
        s.polygon(
            [
                (cx - top_w / 2, y_top),
                (cx + top_w / 2, y_top),
                (cx + bottom_w / 2, 0.94),
                (cx - bottom_w / 2, 0.94),
            ]
        ),
        s.ellipse(cx - bottom_w / 2, 0.91, cx + bottom_w / 2, 0.97),
    )
    shade, u = s.cylinder(cx, top_w / 2)
    s.paint(body, surface(d, u, s.y), shade)
    s.paint(s.ellipse(cx - top_w / 2, y_top - rim, cx + top_w / 2, y_top + rim), d.body, 1.05)
    wall = 0.035
    inside = s.ellipse(
        cx - top_w / 2 + wall,
        y_top - rim + wall * 0.6,
        cx + top_w / 2 - wall,
        y_top + rim - wall * 0.4,
    )
    s.paint(inside, d.accent, 0.45)
    front, facing = _front_of_cylinder(s, cx, top_w / 2)
    if facing:
        _paint_emblem(s, d, front, y_top + 0.42, 0.22)


def _bottle(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    body_w = 0.3 + 0.16 * g[0]
    neck_w = body_w * (0.28 + 0.22 * g[2])
    cap_bottom = 0.03 + 0.05 + 0.06 * g[3]
    neck_bottom = cap_bottom + 0.07 + 0.07 * (1 - g[1])
    shoulder_bottom = neck_bottom + 0.08 + 0.12 * g[1]
    ys = np.linspace(neck_bottom, shoulder_bottom, 12)
    widths = neck_w + (body_w - neck_w) * np.sin(
        (ys - neck_bottom) / (shoulder_bottom - neck_bottom) * math.pi / 2
    )
    outline: list[Point] = [(cx - neck_w / 2, cap_bottom - 0.01)]
    outline += [(cx - float(w) / 2, float(y)) for y, w in zip(ys, widths, strict=True)]
    outline += [(cx - body_w / 2, 0.95), (cx + body_w / 2, 0.95)]
    outline += [(cx + float(w) / 2, float(y)) for y, w in zip(ys[::-1], widths[::-1], strict=True)]
    outline += [(cx + neck_w / 2, cap_bottom - 0.01)]
    glass = np.maximum(
        s.polygon(outline), s.rect(cx - body_w / 2, 0.85, cx + body_w / 2, 0.97, 0.04)
    )
    shade, u = s.cylinder(cx, body_w / 2)
    s.paint(glass, d.body, shade)
    label_top = shoulder_bottom + 0.06
    label_bottom = label_top + (0.97 - label_top) * (0.5 + 0.25 * g[0])
    label = s.rect(cx - body_w / 2, label_top, cx + body_w / 2, label_bottom) * glass
    s.paint(label, surface(d, u, s.y), shade)
    cap_shade, _ = s.cylinder(cx, neck_w / 2 + 0.01)
    s.paint(
        s.rect(cx - neck_w / 2 - 0.012, 0.03, cx + neck_w / 2 + 0.012, cap_bottom, 0.01),
        d.accent,
        cap_shade,
    )
    front, facing = _front_of_cylinder(s, cx, body_w / 2)
    if facing:
        _paint_emblem(s, d, front, (label_top + label_bottom) / 2, min(0.16, body_w * 0.6))


def _sneaker(s: _Sprite, d: Design) -> None:
    g = d.geometry
    # Drawn in a side view 2.1 wide, then squeezed by the turn and mirrored to face it.
    squeeze = (s.aspect - 0.04) / 2.1
    mirror = s.turn < 0

    def at(x: float, y: float) -> Point:
        x = 2.1 - x if mirror else x
        return (0.02 + x * squeeze, y)

    sole_top = 0.84 - 0.07 * g[0]
    collar = 0.34 - 0.22 * g[1]
    toe = 0.55 + 0.1 * g[2]
    upper = s.polygon(
        [
            at(0.08, sole_top),
            at(0.06, collar + 0.12),
            at(0.12, collar),
            at(0.5, collar + 0.1),
            at(0.82, collar - 0.04),
            at(1.0, collar + 0.08),
            at(1.5, toe - 0.04),
            at(1.86, toe),
            at(2.04, sole_top - 0.08),
            at(2.05, sole_top),
        ]
    )
    sole = s.polygon(
        [
            at(0.04, sole_top - 0.02),
            at(2.06, sole_top - 0.03),
            at(2.04, 0.95),
            at(1.9, 0.98),
            at(0.1, 0.98),
            at(0.03, 0.93),
        ]
    )
    shade = (0.78 + 0.35 * (1.0 - s.y) + 0.1 * s.flat(0.0)).astype(np.float32)
    s.paint(upper, surface(d, s.x * 0.8, s.y), shade)
    toe_cap = s.ellipse(*at(1.6, toe - 0.02), *at(2.06, sole_top + 0.02)) * upper
    s.paint(toe_cap, _darker(d.body, 0.85), shade)
    s.paint(sole, d.accent, 1.0)
    s.paint(
        s.line([at(0.05, sole_top + 0.05), at(2.05, sole_top + 0.04)], 0.02),
        _darker(d.accent, 0.75),
    )
    opening = s.ellipse(*at(0.18, collar + 0.01), *at(0.62, collar + 0.12))
    s.paint(opening, (30, 28, 28), 1.0)
    if g[3] > 0.5:  # three stripes
        for k in range(3):
            x = 0.75 + 0.14 * k
            s.paint(
                s.line([at(x, collar + 0.15), at(x + 0.22, sole_top - 0.02)], 0.045) * upper,
                d.pattern_colour,
            )
    else:  # a swoosh
        swoosh = s.polygon(
            [
                at(0.3, sole_top - 0.06),
                at(1.0, sole_top - 0.12),
                at(1.65, toe + 0.02),
                at(1.05, sole_top - 0.04),
                at(0.4, sole_top - 0.02),
            ]
        )
        s.paint(swoosh * upper, d.pattern_colour)
    for k in range(4):
        x = 0.9 + 0.13 * k
        y = collar + 0.07 + (toe - collar) * 0.22 * k
        s.paint(s.line([at(x - 0.06, y - 0.02), at(x + 0.06, y + 0.03)], 0.025), (240, 240, 236))


def _bag(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    front_k = 0.45 + 0.55 * math.cos(s.yaw * math.pi / 2)
    top_w = (0.55 + 0.3 * g[0]) * front_k
    bottom_w = top_w * (1.0 + 0.22 * g[1])
    depth = (0.1 + 0.14 * g[3]) * abs(s.turn)
    y_top = 0.36 + 0.1 * g[2]
    side = 1.0 if s.turn >= 0 else -1.0
    fx = cx - side * depth / 2  # front face centre; the gusset shows on the turned side
    for k in (-1.0, 1.0):
        handle = s.ellipse(
            fx + k * top_w * 0.12 - top_w * 0.2,
            0.04 + 0.1 * (1 - g[2]),
            fx + k * top_w * 0.12 + top_w * 0.2,
            y_top + 0.2,
            width=0.04,
        )
        s.paint(handle * (s.y < y_top + 0.02), d.accent, 0.9)
    if depth > 0.01:
        ex = fx + side * top_w / 2
        ebx = fx + side * bottom_w / 2
        gusset = s.polygon(
            [
                (ex, y_top),
                (ex + side * depth, y_top + 0.02),
                (ebx + side * depth, 0.95),
                (ebx, 0.97),
            ]
        )
        s.paint(gusset, _darker(d.body, 0.9), s.flat(side * 1.3))
    front = s.polygon(
        [
            (fx - top_w / 2, y_top),
            (fx + top_w / 2, y_top),
            (fx + bottom_w / 2, 0.97),
            (fx - bottom_w / 2, 0.97),
        ]
    )
    shade = (s.flat(-side * 0.4 * abs(s.turn)) * (1.05 - 0.15 * s.y)).astype(np.float32)
    s.paint(front, surface(d, (s.x - fx) / front_k, s.y), shade)
    s.paint(
        s.line([(fx - top_w / 2, y_top + 0.01), (fx + top_w / 2, y_top + 0.01)], 0.025),
        _darker(d.accent, 0.9),
    )
    _paint_emblem(s, d, fx, y_top + (0.97 - y_top) * 0.45, 0.2 * front_k + 0.05)


def _lamp(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    shade_bottom = 0.05 + 0.26 + 0.14 * g[0]
    top_w = 0.3 + 0.14 * g[1]
    bottom_w = min(s.aspect - 0.04, 0.58 + 0.16 * g[1])
    base_w = 0.26 + 0.2 * g[3]
    base_top = 0.9 - 0.04 * g[2]
    stem_shade, _ = s.cylinder(cx, 0.03)
    s.paint(
        s.rect(cx - 0.018, shade_bottom - 0.02, cx + 0.018, base_top + 0.02), d.accent, stem_shade
    )
    base_shade, _ = s.cylinder(cx, base_w / 2)
    base = np.maximum(
        s.ellipse(cx - base_w / 2, base_top - 0.03, cx + base_w / 2, base_top + 0.05),
        s.rect(cx - base_w / 2, base_top + 0.01, cx + base_w / 2, 0.97, 0.02),
    )
    s.paint(base, d.accent, base_shade)
    lampshade = s.polygon(
        [
            (cx - top_w / 2, 0.05),
            (cx + top_w / 2, 0.05),
            (cx + bottom_w / 2, shade_bottom),
            (cx - bottom_w / 2, shade_bottom),
        ]
    )
    shade, u = s.cylinder(cx, bottom_w / 2)
    s.paint(lampshade, surface(d, u, s.y), shade * 0.9 + 0.15)
    s.paint(
        s.ellipse(cx - bottom_w / 2, shade_bottom - 0.025, cx + bottom_w / 2, shade_bottom + 0.025),
        (255, 244, 210),
        1.0,
    )


def _box(s: _Sprite, d: Design) -> None:
    g = d.geometry
    angle = s.yaw * math.pi / 2 * 0.9
    front_w = (0.45 + 0.35 * g[0]) * (0.35 + 0.65 * math.cos(angle))
    side_w = (0.25 + 0.3 * g[2]) * abs(math.sin(angle))
    lid = 0.05 + 0.1 * g[3]
    y_top = 0.03 + lid
    y_bottom = 0.97 - 0.25 * (1 - g[1])
    side = 1.0 if angle >= 0 else -1.0
    x0 = 0.04 if side > 0 else 0.04 + side_w
    fx0, fx1 = x0, x0 + front_w
    front = s.rect(fx0, y_top, fx1, y_bottom)
    s.paint(front, surface(d, (s.x - fx0) / max(0.2, math.cos(angle)), s.y), s.flat(-angle))
    if side_w > 0.01:
        edge = fx1 if side > 0 else fx0
        face = s.polygon(
            [
                (edge, y_top),
                (edge + side * side_w, y_top - lid),
                (edge + side * side_w, y_bottom - lid),
                (edge, y_bottom),
            ]
        )
        s.paint(face, surface(d, s.x * 0.5 + 3.1, s.y), s.flat(side * (math.pi / 2) - angle) * 0.85)
        top = s.polygon(
            [
                (fx0, y_top),
                (fx1, y_top),
                (fx1 + side_w * max(side, 0) + 0.0, y_top - lid),
                (fx0 + (side_w if side > 0 else -side_w), y_top - lid),
            ]
        )
    else:
        top = s.polygon(
            [(fx0, y_top), (fx1, y_top), (fx1 - 0.02, y_top - lid), (fx0 + 0.02, y_top - lid)]
        )
    s.paint(top, d.body, 1.15)
    s.paint(s.rect(fx0, y_top, fx1, y_top + 0.05), d.accent, s.flat(-angle))
    _paint_emblem(s, d, (fx0 + fx1) / 2, (y_top + y_bottom) / 2, min(front_w * 0.6, 0.3))


def _cap(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    crown_w = 0.78 + 0.2 * g[2]
    crown_top = 0.28 - 0.18 * g[0]
    crown_bottom = 0.72
    turn = abs(s.turn)
    side = 1.0 if s.turn >= 0 else -1.0
    brim_len = 0.3 + 0.2 * g[1]
    brim_cx = cx + side * turn * (crown_w / 2 + brim_len * 0.35)
    brim_w = crown_w * (0.75 + 0.35 * turn)
    brim_h = 0.05 + 0.18 * (1 - turn)
    brim = s.ellipse(
        brim_cx - brim_w / 2,
        crown_bottom - brim_h * 0.4,
        brim_cx + brim_w / 2,
        crown_bottom + brim_h,
    )
    crown = np.maximum(
        s.ellipse(
            cx - crown_w / 2, crown_top, cx + crown_w / 2, crown_bottom + (crown_bottom - crown_top)
        ),
        0,
    ) * (s.y < crown_bottom + 0.02)
    shade, u = s.cylinder(cx, crown_w / 2)
    if turn < 0.5:  # brim in front of the crown
        s.paint(crown, surface(d, u, s.y), shade)
        s.paint(brim, d.accent, s.flat(0.2))
    else:
        s.paint(brim, d.accent, s.flat(side * 0.8))
        s.paint(crown, surface(d, u, s.y), shade)
    for k in (-0.5, 0.0, 0.5):
        seam_x = cx + (k - s.yaw * 0.4) * crown_w / 2
        if abs(seam_x - cx) < crown_w / 2 * 0.9:
            s.paint(
                s.line([(cx, crown_top + 0.01), (seam_x, crown_bottom)], 0.012) * crown,
                _darker(d.body, 0.7),
            )
    s.paint(s.ellipse(cx - 0.04, crown_top - 0.02, cx + 0.04, crown_top + 0.03), d.accent)
    front, facing = _front_of_cylinder(s, cx, crown_w / 2)
    if facing:
        _paint_emblem(s, d, front, (crown_top + crown_bottom) / 2 + 0.04, 0.2)


def _vase(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    half = s.aspect / 2 - 0.03
    knots_y = np.array([0.04, 0.2, 0.32 + 0.36 * g[1], 0.97])
    knots_r = np.array([0.12 + 0.12 * g[3], 0.07 + 0.1 * g[2], 0.18 + 0.14 * g[0], 0.12]) * (
        half / 0.32
    )
    knots_r = np.minimum(knots_r, half)
    ys = np.linspace(0.04, 0.97, 48)
    # Cosine easing between knots gives a thrown-pot profile.
    rs = np.empty_like(ys)
    for i, y in enumerate(ys):
        j = min(int(np.searchsorted(knots_y, y, side="right")) - 1, len(knots_y) - 2)
        t = (y - knots_y[j]) / (knots_y[j + 1] - knots_y[j])
        w = 0.5 - 0.5 * math.cos(math.pi * t)
        rs[i] = knots_r[j] * (1 - w) + knots_r[j + 1] * w
    outline = [(cx - float(r), float(y)) for y, r in zip(ys, rs, strict=True)]
    outline += [(cx + float(r), float(y)) for y, r in zip(ys[::-1], rs[::-1], strict=True)]
    pot = s.polygon(outline)
    radius = np.interp(s.y[:, 0], ys, rs).astype(np.float32)[:, None]
    t = np.clip((s.x - cx) / np.maximum(radius, 1e-3), -0.999, 0.999)
    theta = np.arcsin(t).astype(np.float32)
    u = ((theta + s.yaw * math.pi / 2) * 0.2).astype(np.float32)
    s.paint(pot, surface(d, u, s.y), s._lambert(theta))
    lip = float(knots_r[0])
    s.paint(s.ellipse(cx - lip, 0.025, cx + lip, 0.07), _darker(d.body, 0.35))


# -- distractor families -----------------------------------------------------------------


def _ball(s: _Sprite, d: Design) -> None:
    r = 0.47
    c = 0.5
    disc = s.ellipse(c - r, c - r, c + r, c + r)
    nx = np.clip((s.x - c) / r, -0.999, 0.999)
    ny = np.clip((s.y - c) / r, -0.999, 0.999)
    nz = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0.0, 1.0))
    lx = math.sin(s.light)
    lz = math.cos(s.light)
    diffuse = np.clip(nx * lx + nz * lz - ny * 0.3, 0.0, 1.0)
    shade = (0.3 + 0.75 * diffuse + 0.35 * diffuse**20).astype(np.float32)
    u = (np.arctan2(nx, nz) + s.yaw * math.pi / 2) * 0.3
    v = np.arcsin(ny) * 0.3
    s.paint(disc, surface(d, u.astype(np.float32), v.astype(np.float32)), shade)


def _plant(s: _Sprite, d: Design) -> None:
    g = d.geometry
    cx = s.aspect / 2
    pot_top = 0.6 + 0.1 * g[0]
    leaves = 5 + int(g[1] * 5)
    for k in range(leaves):
        angle = -1.2 + 2.4 * k / max(1, leaves - 1) + (g[2] - 0.5) * 0.4 + s.yaw * 0.2
        length = 0.35 + 0.2 * ((k * 7919 % 5) / 5) + 0.1 * g[3]
        tip = (cx + math.sin(angle) * length * 0.9, pot_top - math.cos(angle) * length)
        mid = ((cx + tip[0]) / 2, (pot_top + tip[1]) / 2)
        px, py = -(tip[1] - pot_top), tip[0] - cx
        norm = math.hypot(px, py) or 1.0
        wide = 0.06 + 0.03 * g[3]
        leaf = s.polygon(
            [
                (cx, pot_top),
                (mid[0] + px / norm * wide, mid[1] + py / norm * wide),
                tip,
                (mid[0] - px / norm * wide, mid[1] - py / norm * wide),
            ]
        )
        green = (
            int(40 + 30 * (k % 3)),
            int(110 + 25 * (k % 2) + 30 * g[2]),
            int(40 + 10 * (k % 3)),
        )
        s.paint(leaf, green, 0.8 + 0.3 * (k % 2))
    top_w, bottom_w = 0.5 + 0.1 * g[0], 0.36
    pot = s.polygon(
        [
            (cx - top_w / 2, pot_top),
            (cx + top_w / 2, pot_top),
            (cx + bottom_w / 2, 0.97),
            (cx - bottom_w / 2, 0.97),
        ]
    )
    shade, u = s.cylinder(cx, top_w / 2)
    s.paint(pot, surface(d, u, s.y), shade)
    s.paint(
        s.rect(cx - top_w / 2 - 0.01, pot_top - 0.01, cx + top_w / 2 + 0.01, pot_top + 0.06, 0.01),
        _darker(d.body, 0.9),
        shade,
    )


def _book(s: _Sprite, d: Design) -> None:
    g = d.geometry
    k = 0.35 + 0.65 * math.cos(s.yaw * math.pi / 2)
    w = (s.aspect - 0.08) * k
    x0 = (s.aspect - w) / 2
    spine = (0.06 + 0.08 * g[0]) * (0.3 + abs(s.turn))
    if s.turn > 0:
        s.paint(s.rect(x0 + w, 0.04, x0 + w + spine, 0.96), d.accent, s.flat(1.2))
    cover = s.rect(x0, 0.03, x0 + w, 0.97, 0.01)
    s.paint(cover, surface(d, (s.x - x0) / k, s.y), s.flat(-s.yaw * 0.5))
    s.paint(s.rect(x0, 0.03, x0 + 0.05 * k, 0.97), d.accent, 0.8)
    for line in range(1 + int(g[1] * 3)):
        y = 0.15 + 0.08 * line
        s.paint(
            s.rect(x0 + 0.15 * k, y, x0 + w * (0.85 - 0.1 * (line % 2)), y + 0.035),
            d.pattern_colour,
        )


def _car(s: _Sprite, d: Design) -> None:
    g = d.geometry
    squeeze = (s.aspect - 0.04) / 1.8
    mirror = s.turn < 0

    def at(x: float, y: float) -> Point:
        x = 1.8 - x if mirror else x
        return (0.02 + x * squeeze, y)

    roof = 0.12 + 0.12 * g[0]
    body = s.polygon(
        [
            at(0.02, 0.5),
            at(0.25, 0.42),
            at(1.55, 0.42),
            at(1.78, 0.55),
            at(1.78, 0.78),
            at(0.02, 0.78),
        ]
    )
    cabin = s.polygon([at(0.35, 0.43), at(0.6, roof), at(1.15, roof), at(1.4, 0.43)])
    shade = (0.75 + 0.4 * (1.0 - s.y)).astype(np.float32)
    s.paint(cabin, surface(d, s.x, s.y), shade)
    s.paint(body, surface(d, s.x, s.y), shade)
    window = s.polygon([at(0.45, 0.41), at(0.64, roof + 0.04), at(1.1, roof + 0.04), at(1.3, 0.41)])
    s.paint(window, (170, 200, 215), 0.9)
    for wx in (0.4 + 0.1 * g[1], 1.4 - 0.1 * g[1]):
        cx, cy = at(wx, 0.8)
        r = 0.16
        s.paint(s.ellipse(cx - r * squeeze, cy - r, cx + r * squeeze, cy + r), (25, 25, 28))
        s.paint(
            s.ellipse(
                cx - r * 0.45 * squeeze, cy - r * 0.45, cx + r * 0.45 * squeeze, cy + r * 0.45
            ),
            d.accent,
        )


def _clock(s: _Sprite, d: Design) -> None:
    g = d.geometry
    k = 0.3 + 0.7 * math.cos(s.yaw * math.pi / 2)
    c = s.aspect / 2
    r = 0.46
    s.paint(s.ellipse(c - r * k, 0.5 - r, c + r * k, 0.5 + r), d.body, s.flat(-s.yaw * 0.6))
    face = r * 0.82
    s.paint(s.ellipse(c - face * k, 0.5 - face, c + face * k, 0.5 + face), (242, 238, 226), 1.0)
    for tick in range(12):
        t = tick * math.pi / 6
        p0 = (c + math.sin(t) * face * 0.8 * k, 0.5 - math.cos(t) * face * 0.8)
        p1 = (c + math.sin(t) * face * 0.95 * k, 0.5 - math.cos(t) * face * 0.95)
        s.paint(s.line([p0, p1], 0.02), (40, 40, 40))
    for length, angle, width in (
        (0.5, g[0] * 2 * math.pi, 0.035),
        (0.75, g[1] * 2 * math.pi, 0.022),
    ):
        tip = (c + math.sin(angle) * face * length * k, 0.5 - math.cos(angle) * face * length)
        s.paint(s.line([(c, 0.5), tip], width), (30, 30, 30))


_DRAWERS: dict[str, Callable[[_Sprite, Design], None]] = {
    "mug": _mug,
    "bottle": _bottle,
    "sneaker": _sneaker,
    "bag": _bag,
    "lamp": _lamp,
    "box": _box,
    "cap": _cap,
    "vase": _vase,
    "ball": _ball,
    "plant": _plant,
    "book": _book,
    "car": _car,
    "clock": _clock,
}
