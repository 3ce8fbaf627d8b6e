"""Frames from a video plan, and what is visible in each.

Every frame is composed back to front: the background seen through the camera, the
objects by layer, the foreground occluders; then camera motion blur, lighting and sensor
noise. While composing, an id buffer records which object owns each pixel, so the ground
truth box of an object is the box of its *visible* pixels and its visibility is the share
of its silhouette that is on screen and not hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from vitrine_shopbench import images
from vitrine_shopbench import rng as rngs
from vitrine_shopbench.scene import (
    Appearance,
    Background,
    Occluder,
    Pose,
    Shot,
    VideoPlan,
    camera_at,
    light_at,
    pose_at,
)
from vitrine_shopbench.shapes import render

# The background is kept at this fraction of the frame's pixel density: a soft, out of
# focus backdrop behind sharp objects, and cheaper to resample every frame.
_BACKGROUND_DENSITY = 0.6
_WORLD_MIN, _WORLD_SPAN = -0.3, 1.6  # the background covers world [-0.3, 1.3]
_SPRITE_BUCKETS = (24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 480, 576, 720, 900)
_SHUTTER = 0.5  # share of a frame interval the virtual shutter is open: blur length
_OCCLUDER = -2
_SIZE_STEP = math.log(1.03)


@dataclass(frozen=True, slots=True)
class Seen:
    """One object in one frame: its visible box (pixels, x2/y2 exclusive) and the share
    of its silhouette that is visible."""

    object_id: int
    box: tuple[int, int, int, int]
    visible: float


# Difficulties a dataset can be made without (``generate --without``), to measure what
# each costs a matcher: the same plans, objects and ground truth, drawn without it.
DIFFICULTIES: tuple[str, ...] = ("lighting", "blur", "occluders")


class FrameRenderer:
    def __init__(self, seed: int, plan: VideoPlan, without: frozenset[str] = frozenset()) -> None:
        self.check(without)
        self.without = without
        self.plan = plan
        self.width = plan.format.width
        self.height = plan.format.height
        self.short = min(self.width, self.height)
        self.fps = plan.format.fps
        self._seed = seed
        self._backgrounds: dict[int, Image.Image] = {}
        self._sprites: dict[tuple[str, float, float, int], Image.Image] = {}
        self._grain: dict[int, Image.Image] = {}
        self._occluders: dict[tuple[int, int], Image.Image] = {}
        self._placed_cache: dict[tuple[str, float, float, int, int], Image.Image] = {}
        self._noise_rng = rngs.stream(seed, "noise-offsets", plan.video_id)

    @staticmethod
    def check(without: frozenset[str]) -> None:
        unknown = sorted(without - set(DIFFICULTIES))
        if unknown:
            raise ValueError(
                f"unknown difficulty {', '.join(unknown)}: choose from {', '.join(DIFFICULTIES)}"
            )

    def frame(self, index: int) -> tuple[NDArray[np.uint8], list[Seen]]:
        t = index / self.fps
        shot_index, shot = self._shot(t)
        cx, cy, zoom = camera_at(shot, t)
        background = self._background(shot_index, shot.background)
        frame = background.resize(
            (self.width, self.height),
            Image.Resampling.BILINEAR,
            box=self._window(background, cx, cy, zoom),
        )
        owner = np.full((self.height, self.width), -1, np.int16)
        silhouettes: dict[int, tuple[int, tuple[int, int, int, int]]] = {}
        active = sorted(
            (
                a
                for a in self.plan.appearances
                if a.start <= t < a.end and shot.start <= a.start < shot.end
            ),
            key=lambda a: a.layer,
        )
        for appearance in active:
            drawn = self._draw_object(frame, owner, appearance, shot, t)
            if drawn is not None:
                silhouettes[appearance.object_id] = drawn
        for occluder in self.plan.occluders:
            if occluder.start <= t < occluder.end and "occluders" not in self.without:
                self._draw_occluder(frame, owner, occluder, shot, t)
        seen = self._seen(owner, silhouettes)
        image = frame if "blur" in self.without else self._camera_blur(frame, shot, t)
        gain, tint = (1.0, (1.0, 1.0, 1.0)) if "lighting" in self.without else light_at(shot, t)
        luts: list[int] = []
        for channel in tint:
            k = gain * channel
            luts += [min(255, int(v * k + 0.5)) for v in range(256)]
        image = image.point(luts)
        if shot.noise > 0:
            # Sensor grain: a fixed noise field per shot, seen through a random offset.
            ox, oy = (int(v) for v in self._noise_rng.integers(0, 64, 2))
            grain = self._grain_field(shot_index, shot.noise)
            window = grain.crop((ox, oy, ox + self.width, oy + self.height))
            image = ImageChops.add(image, window, scale=1.0, offset=-128)
        return np.asarray(image), seen

    def _grain_field(self, index: int, sigma: float) -> Image.Image:
        if index not in self._grain:
            rng = rngs.stream(self._seed, "grain", self.plan.video_id, index)
            field = rng.standard_normal((self.height + 64, self.width + 64)) * sigma + 128.0
            grey = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
            self._grain[index] = Image.merge("RGB", (grey, grey, grey))
        return self._grain[index]

    # -- background ----------------------------------------------------------------------
    def _shot(self, t: float) -> tuple[int, Shot]:
        for index, shot in enumerate(self.plan.shots):
            if t < shot.end:
                return index, shot
        return len(self.plan.shots) - 1, self.plan.shots[-1]

    def _window(
        self, background: Image.Image, cx: float, cy: float, zoom: float
    ) -> tuple[float, float, float, float]:
        bw, bh = background.size
        half = 0.5 / zoom

        def px(w: float, size: int) -> float:
            return min(size, max(0.0, (w - _WORLD_MIN) / _WORLD_SPAN * size))

        return (px(cx - half, bw), px(cy - half, bh), px(cx + half, bw), px(cy + half, bh))

    def _background(self, index: int, spec: Background) -> Image.Image:
        if index not in self._backgrounds:
            self._backgrounds[index] = build_background(
                self._seed, self.plan.video_id, index, spec, self.width, self.height
            )
        return self._backgrounds[index]

    # -- objects -------------------------------------------------------------------------
    def _screen(self, pose: Pose, shot: Shot, t: float) -> tuple[float, float, float]:
        cx, cy, zoom = camera_at(shot, t)
        x = ((pose.x - cx) * zoom + 0.5) * self.width
        y = ((pose.y - cy) * zoom + 0.5) * self.height
        return x, y, pose.size * zoom * self.short

    def _sprite(self, appearance: Appearance, yaw: float, pixels: float) -> Image.Image:
        bucket = next((b for b in _SPRITE_BUCKETS if b >= pixels), _SPRITE_BUCKETS[-1])
        yaw_q = round(yaw * 8) / 8
        light = round(appearance.light, 2)
        key = (appearance.design.key, yaw_q, light, bucket)
        if key not in self._sprites:
            self._sprites[key] = Image.fromarray(
                render(appearance.design, yaw_q, light, bucket), "RGBA"
            )
        return self._sprites[key]

    def _placed(self, appearance: Appearance, pose: Pose, pixels: float) -> Image.Image:
        """The sprite scaled and turned in the plane, in one resampling. Size (3 % steps)
        and angle (1 degree) are quantised so a still object reuses its pixels; the ground
        truth comes from the pixels actually drawn, so it stays exact."""
        size_q = round(math.log(pixels) / _SIZE_STEP)
        angle_q = round(pose.angle) % 360
        yaw_q = round(pose.yaw * 8) / 8
        key = (appearance.design.key, yaw_q, round(appearance.light, 2), size_q, angle_q)
        cached = self._placed_cache.pop(key, None)
        if cached is None:
            height = math.exp(size_q * _SIZE_STEP)
            cached = _scale_rotate(self._sprite(appearance, pose.yaw, height), height, angle_q)
        self._placed_cache[key] = cached
        while len(self._placed_cache) > 48:
            self._placed_cache.pop(next(iter(self._placed_cache)))
        return cached

    def _draw_object(
        self,
        frame: Image.Image,
        owner: NDArray[np.int16],
        appearance: Appearance,
        shot: Shot,
        t: float,
    ) -> tuple[int, tuple[int, int, int, int]] | None:
        pose = pose_at(appearance.keys, t)
        x, y, pixels = self._screen(pose, shot, t)
        if pixels < 6:
            return None
        sprite = self._placed(appearance, pose, pixels)
        before = pose_at(appearance.keys, t - 1.0 / self.fps)
        bx, by, _ = self._screen(before, shot, t - 1.0 / self.fps)
        return self._composite(frame, owner, sprite, x, y, (x - bx, y - by), appearance.object_id)

    def _composite(
        self,
        frame: Image.Image,
        owner: NDArray[np.int16],
        sprite: Image.Image,
        x: float,
        y: float,
        velocity: tuple[float, float],
        owner_id: int,
    ) -> tuple[int, tuple[int, int, int, int]] | None:
        """Paste an RGBA sprite centred at (x, y) and mark the pixels it owns. Returns the
        size of its whole silhouette in pixels (on screen or not) and the frame region it
        may own, or None when it is wholly off screen."""
        solid = np.asarray(sprite.getchannel("A")) >= 128
        full = int(solid.sum())
        sprite, pad = (sprite, 0) if "blur" in self.without else _motion_blur(sprite, velocity)
        w, h = sprite.size
        left, top = round(x - w / 2), round(y - h / 2)
        x0, y0 = max(0, left), max(0, top)
        x1, y1 = min(self.width, left + w), min(self.height, top + h)
        if x1 <= x0 or y1 <= y0 or full == 0:
            return None
        frame.paste(sprite, (left, top), sprite)
        # Ownership follows the sharp silhouette: a blurred edge is not the object.
        sx, sy = left + pad, top + pad
        cx0, cy0 = max(0, sx), max(0, sy)
        cx1, cy1 = min(self.width, sx + solid.shape[1]), min(self.height, sy + solid.shape[0])
        if cx1 <= cx0 or cy1 <= cy0:
            return None
        mine = solid[cy0 - sy : cy1 - sy, cx0 - sx : cx1 - sx]
        owner[cy0:cy1, cx0:cx1][mine] = owner_id
        return full, (cx0, cy0, cx1, cy1)

    def _draw_occluder(
        self, frame: Image.Image, owner: NDArray[np.int16], occluder: Occluder, shot: Shot, t: float
    ) -> None:
        pose = pose_at(occluder.keys, t)
        x, y, pixels = self._screen(pose, shot, t)
        key = (self.plan.occluders.index(occluder), round(pixels / 4))
        if key not in self._occluders:
            rgba = occluder_sprite(occluder, pixels, self.short)
            self._occluders[key] = Image.fromarray(rgba, "RGBA").rotate(
                pose.angle, resample=Image.Resampling.BILINEAR, expand=True
            )
        image = self._occluders[key]
        before = pose_at(occluder.keys, t - 1.0 / self.fps)
        bx, by, _ = self._screen(before, shot, t - 1.0 / self.fps)
        self._composite(frame, owner, image, x, y, (x - bx, y - by), _OCCLUDER)

    def _seen(
        self,
        owner: NDArray[np.int16],
        silhouettes: dict[int, tuple[int, tuple[int, int, int, int]]],
    ) -> list[Seen]:
        seen = []
        for object_id, (full, (x0, y0, x1, y1)) in silhouettes.items():
            mask = owner[y0:y1, x0:x1] == object_id
            count = int(mask.sum())
            if count == 0:
                continue
            rows = np.flatnonzero(mask.any(axis=1))
            cols = np.flatnonzero(mask.any(axis=0))
            box = (
                x0 + int(cols[0]),
                y0 + int(rows[0]),
                x0 + int(cols[-1]) + 1,
                y0 + int(rows[-1]) + 1,
            )
            seen.append(Seen(object_id, box, round(min(1.0, count / full), 3)))
        return seen

    def _camera_blur(self, image: Image.Image, shot: Shot, t: float) -> Image.Image:
        cx0, cy0, _ = camera_at(shot, max(shot.start, t - 1.0 / self.fps))
        cx1, cy1, z1 = camera_at(shot, t)
        dx = (cx1 - cx0) * z1 * self.width * _SHUTTER
        dy = (cy1 - cy0) * z1 * self.height * _SHUTTER
        if math.hypot(dx, dy) < 3.0:
            return image
        return image.filter(ImageFilter.BoxBlur((abs(dx) / 2, abs(dy) / 2)))


def _scale_rotate(sprite: Image.Image, height: float, angle: float) -> Image.Image:
    """Scale `sprite` to `height` pixels and turn it `angle` degrees counter-clockwise,
    on a canvas that holds it whole."""
    k = height / sprite.height
    w, h = sprite.width * k, sprite.height * k
    if angle == 0:
        return sprite.resize((max(2, round(w)), max(2, round(h))), Image.Resampling.BILINEAR)
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    out_w = max(2, math.ceil(abs(w * cos) + abs(h * sin)))
    out_h = max(2, math.ceil(abs(w * sin) + abs(h * cos)))
    # Inverse map: output pixel -> source pixel (rotation by -angle, then unscale).
    a, b = cos / k, -sin / k
    d, e = sin / k, cos / k
    ox, oy = out_w / 2, out_h / 2
    c = sprite.width / 2 - a * ox - b * oy
    f = sprite.height / 2 - d * ox - e * oy
    return sprite.transform(
        (out_w, out_h),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
    )


def _motion_blur(sprite: Image.Image, velocity: tuple[float, float]) -> tuple[Image.Image, int]:
    """Smear a sprite along its motion while the shutter is open (box blur along each
    axis, on premultiplied colour so edges do not darken); returns it and the padding
    added on every side."""
    dx, dy = abs(velocity[0]) * _SHUTTER, abs(velocity[1]) * _SHUTTER
    if math.hypot(dx, dy) < 2.0:
        return sprite, 0
    pad = math.ceil(max(dx, dy) / 2) + 1
    canvas = Image.new("RGBA", (sprite.width + 2 * pad, sprite.height + 2 * pad), (0, 0, 0, 0))
    canvas.paste(sprite, (pad, pad))
    # A radius under a pixel on one axis is skipped: blurring an axis costs as much as
    # the other, and most motion is along one.
    radius = (dx / 2 if dx >= 2 else 0, dy / 2 if dy >= 2 else 0)
    blurred = canvas.convert("RGBa").filter(ImageFilter.BoxBlur(radius))
    return blurred.convert("RGBA"), pad


def occluder_sprite(occluder: Occluder, pixels: float, short: int) -> NDArray[np.uint8]:
    """An out-of-focus foreground shape: an arm, a leaf or a pole."""
    size = max(8, round(pixels))
    if occluder.kind == "pole":
        w, h = max(4, round(size * 0.12)), max(8, round(short * 2.2))
    elif occluder.kind == "arm":
        w, h = max(4, round(size * 0.22)), size
    else:
        w, h = max(4, round(size * 0.5)), size
    pad = round(occluder.blur * short / 720 * 2) + 2
    mask = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
    draw = ImageDraw.Draw(mask)
    if occluder.kind == "leaf":
        draw.ellipse([pad, pad, pad + w, pad + h], fill=255)
    else:
        draw.rounded_rectangle([pad, pad, pad + w, pad + h], radius=w // 2, fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(occluder.blur * short / 720))
    alpha = np.asarray(mask, np.float32)
    across = np.linspace(-1.0, 1.0, mask.width, dtype=np.float32)[None, :]
    shade = 0.65 + 0.45 * np.cos(across * 1.2)
    rgb = (
        np.asarray(occluder.colour, np.float32)
        * shade[..., None]
        * np.ones((mask.height, 1, 1), np.float32)
    )
    out = np.empty((mask.height, mask.width, 4), np.uint8)
    out[..., :3] = np.clip(rgb, 0, 255).astype(np.uint8)
    out[..., 3] = alpha.astype(np.uint8)
    return out


def build_background(
    seed: int, video_id: str, index: int, spec: Background, width: int, height: int
) -> Image.Image:
    """The world behind a shot: a real photo, or a tabletop (a wall above a surface)."""
    bw = max(64, round(width * _WORLD_SPAN * _BACKGROUND_DENSITY))
    bh = max(64, round(height * _WORLD_SPAN * _BACKGROUND_DENSITY))
    if spec.kind == "photo":
        image = _cover(images.photo(spec.photo), bw, bh, spec.offset)
    else:
        wall_h = max(8, round(bh * spec.horizon))
        wall = _cover(images.photo(spec.photo), bw, wall_h, spec.offset).filter(
            ImageFilter.GaussianBlur(6)
        )
        rng = rngs.stream(seed, "surface", video_id, index)
        surface = _surface(rng, spec.surface, bw, bh - wall_h)
        image = Image.new("RGB", (bw, bh))
        image.paste(wall, (0, 0))
        image.paste(surface, (0, wall_h))
    if spec.mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if spec.blur > 0.3:
        image = image.filter(ImageFilter.GaussianBlur(spec.blur))
    luts: list[int] = []
    for channel in spec.tint:
        luts += [min(255, int(v * channel + 0.5)) for v in range(256)]
    return image.point(luts)


def _cover(photo: Image.Image, width: int, height: int, offset: tuple[float, float]) -> Image.Image:
    scale = max(width / photo.width, height / photo.height) * 1.15
    w, h = math.ceil(photo.width * scale), math.ceil(photo.height * scale)
    big = photo.resize((w, h), Image.Resampling.BICUBIC)
    x = round((w - width) * offset[0])
    y = round((h - height) * offset[1])
    return big.crop((x, y, x + width, y + height))


def _surface(rng: np.random.Generator, kind: str, width: int, height: int) -> Image.Image:
    colour = np.asarray(rng.uniform(90, 230, 3), np.float32)
    if kind == "wood":
        xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
        ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
        wobble = np.sin(ys * rng.uniform(3, 9) + xs * rng.uniform(1, 4)) * 0.02
        grain = 0.5 + 0.5 * np.sin((xs + wobble) * rng.uniform(60, 140))
        lum = 0.7 + 0.3 * grain * np.ones_like(ys)
        colour = np.asarray(
            [rng.uniform(110, 190), rng.uniform(70, 120), rng.uniform(30, 70)], np.float32
        )
    else:
        texture = images.grey(kind)
        tile = max(32, int(width / rng.uniform(2.0, 5.0)))
        scaled = Image.fromarray((texture * 255).astype(np.uint8)).resize(
            (tile, tile), Image.Resampling.BILINEAR
        )
        reps = (math.ceil(height / tile), math.ceil(width / tile))
        lum = np.tile(np.asarray(scaled, np.float32) / 255.0, reps)[:height, :width] * 0.6 + 0.45
    depth = np.linspace(0.7, 1.05, height, dtype=np.float32)[:, None]  # nearer is brighter
    rgb = lum[..., None] * depth[..., None] * colour
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
