"""Video plans: what happens in a video, decided from the seed before any pixel is drawn.

A video is one to three shots (hard cuts). A shot has a background (a real photo, or a
tabletop made of a wall and a surface), a camera that pans, zooms, shakes and sometimes
whips, and lighting that drifts, dims and changes colour. Objects (products and
distractors) appear and leave by sliding in, popping in or growing, move, turn, spin and
scale; foreground occluders (an arm, a leaf, a pole) pass in front. Each video keeps at
least one stretch in which no product is on screen.

World coordinates: x and y in [0, 1] are the frame at zoom 1 and camera centre (0.5,
0.5); an object's size is its height in units of the frame's short side.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from vitrine_shopbench import rng as rngs
from vitrine_shopbench.catalog import Catalog, Product
from vitrine_shopbench.images import TEXTURES
from vitrine_shopbench.palette import COLOURS, DISTRACTOR_COLOURS, EMBLEMS, PATTERNS
from vitrine_shopbench.shapes import DISTRACTOR_FAMILIES, PRODUCT_FAMILIES, Design


@dataclass(frozen=True, slots=True)
class Pose:
    x: float
    y: float
    size: float
    angle: float  # in-plane, degrees
    yaw: float  # turn about the vertical axis, [-1, 1]


@dataclass(frozen=True, slots=True)
class Key:
    t: float  # seconds from the start of the video
    pose: Pose


@dataclass(frozen=True, slots=True)
class Appearance:
    object_id: int
    kind: str  # "product" or "distractor"
    product_id: str | None
    design: Design
    start: float
    end: float
    keys: tuple[Key, ...]
    layer: int  # higher is nearer the camera
    light: float


@dataclass(frozen=True, slots=True)
class Occluder:
    kind: str  # "arm", "leaf" or "pole"
    start: float
    end: float
    keys: tuple[Key, ...]
    colour: tuple[int, int, int]
    blur: float  # pixels at 720p: foreground is out of focus


@dataclass(frozen=True, slots=True)
class CameraKey:
    t: float
    cx: float
    cy: float
    zoom: float


@dataclass(frozen=True, slots=True)
class LightKey:
    t: float
    gain: float
    tint: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Background:
    kind: str  # "photo" or "table"
    photo: str  # the photo (or, for a table, the wall)
    surface: str  # table top: a texture name or "wood"; "" for a photo
    horizon: float  # where a table's surface starts, from the top, [0, 1]
    mirror: bool
    tint: tuple[float, float, float]
    offset: tuple[float, float]  # where the crop of the photo sits, [0, 1]
    blur: float


@dataclass(frozen=True, slots=True)
class Shot:
    start: float
    end: float
    background: Background
    camera: tuple[CameraKey, ...]
    shake: float
    shake_phase: tuple[float, float, float, float]
    lights: tuple[LightKey, ...]
    noise: float  # sensor noise sigma, 8-bit levels
    light_direction: float


@dataclass(frozen=True, slots=True)
class Format:
    codec: str  # "h264" or "vp9"
    width: int
    height: int
    fps: int

    @property
    def container(self) -> str:
        return "mp4" if self.codec == "h264" else "webm"


@dataclass(frozen=True, slots=True)
class VideoPlan:
    video_id: str
    split: str
    format: Format
    duration: float  # seconds
    quality: int  # encoder CRF: higher is more compressed
    shots: tuple[Shot, ...]
    appearances: tuple[Appearance, ...]
    occluders: tuple[Occluder, ...]
    product_gap: tuple[float, float]  # the stretch planned to hold no product

    @property
    def frame_count(self) -> int:
        return round(self.duration * self.format.fps)


def smooth(t: float) -> float:
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def pose_at(keys: tuple[Key, ...], t: float) -> Pose:
    if t <= keys[0].t:
        return keys[0].pose
    for a, b in itertools.pairwise(keys):
        if t <= b.t:
            w = smooth((t - a.t) / max(b.t - a.t, 1e-6))
            p, q = a.pose, b.pose
            return Pose(
                p.x + (q.x - p.x) * w,
                p.y + (q.y - p.y) * w,
                p.size + (q.size - p.size) * w,
                p.angle + (q.angle - p.angle) * w,
                p.yaw + (q.yaw - p.yaw) * w,
            )
    return keys[-1].pose


def camera_at(shot: Shot, t: float) -> tuple[float, float, float]:
    keys = shot.camera
    cx, cy, zoom = keys[-1].cx, keys[-1].cy, keys[-1].zoom
    if t <= keys[0].t:
        cx, cy, zoom = keys[0].cx, keys[0].cy, keys[0].zoom
    else:
        for a, b in itertools.pairwise(keys):
            if t <= b.t:
                w = smooth((t - a.t) / max(b.t - a.t, 1e-6))
                cx = a.cx + (b.cx - a.cx) * w
                cy = a.cy + (b.cy - a.cy) * w
                zoom = a.zoom + (b.zoom - a.zoom) * w
                break
    # Handheld shake: a few incommensurate sines.
    p = shot.shake_phase
    cx += shot.shake * (math.sin(7.1 * t + p[0]) + 0.5 * math.sin(13.3 * t + p[1]))
    cy += shot.shake * (math.sin(5.7 * t + p[2]) + 0.5 * math.sin(17.9 * t + p[3]))
    return cx, cy, zoom


def light_at(shot: Shot, t: float) -> tuple[float, tuple[float, float, float]]:
    keys = shot.lights
    if t <= keys[0].t:
        return keys[0].gain, keys[0].tint
    for a, b in itertools.pairwise(keys):
        if t <= b.t:
            w = (t - a.t) / max(b.t - a.t, 1e-6)
            tint = tuple(x + (y - x) * w for x, y in zip(a.tint, b.tint, strict=True))
            return a.gain + (b.gain - a.gain) * w, (tint[0], tint[1], tint[2])
    return keys[-1].gain, keys[-1].tint


# -- planning ----------------------------------------------------------------------------


def plan_video(
    seed: int,
    catalog: Catalog,
    video_id: str,
    split: str,
    fmt: Format,
    duration: float,
    products: list[Product],
    photos: list[str],
) -> VideoPlan:
    """Plan one video showing the first few of `products` (the caller orders them by
    preference), on backgrounds from `photos`."""
    rng = rngs.stream(seed, "video", video_id)
    shots = _plan_shots(rng, duration, photos)
    gap = _plan_gap(rng, duration)
    chosen = _choose_products(rng, catalog, products, duration)
    appearances: list[Appearance] = []
    for product in chosen:
        visits = 2 if duration >= 15 and rng.random() < 0.35 else 1
        for _ in range(visits):
            span = _find_span(rng, shots, gap, appearances, duration, avoid_gap=True)
            if span is None:
                continue
            appearances.append(
                _appearance(
                    rng, len(appearances), "product", product.product_id, product.design, span, fmt
                )
            )
    distractors = int(rng.integers(0, 2 + int(duration // 12)))
    if duration < 10:
        distractors = max(distractors, 1)
    for _ in range(min(distractors, 4)):
        span = _find_span(rng, shots, gap, appearances, duration, avoid_gap=False)
        if span is None:
            continue
        design = distractor_design(rng, catalog)
        appearances.append(
            _appearance(rng, len(appearances), "distractor", None, design, span, fmt)
        )
    occluders = tuple(
        _occluder(rng, a) for a in appearances if a.kind == "product" and rng.random() < 0.35
    )
    quality = int(rng.integers(22, 33)) if fmt.codec == "h264" else int(rng.integers(30, 45))
    return VideoPlan(
        video_id=video_id,
        split=split,
        format=fmt,
        duration=duration,
        quality=quality,
        shots=shots,
        appearances=tuple(appearances),
        occluders=occluders,
        product_gap=gap,
    )


def _plan_shots(rng: np.random.Generator, duration: float, photos: list[str]) -> tuple[Shot, ...]:
    cuts = 0 if duration < 12 else int(rng.integers(0, 2 + int(duration >= 30)))
    bounds = [0.0]
    for k in range(cuts):
        share = (k + 1) / (cuts + 1) + rngs.uniform(rng, -0.1, 0.1)
        bounds.append(round(duration * share, 2))
    bounds.append(duration)
    shots = []
    for start, end in itertools.pairwise(bounds):
        shots.append(_plan_shot(rng, start, end, photos))
    return tuple(shots)


def _plan_shot(rng: np.random.Generator, start: float, end: float, photos: list[str]) -> Shot:
    table = rng.random() < 0.45
    tint = tuple(rngs.uniform(rng, 0.8, 1.15) for _ in range(3))
    background = Background(
        kind="table" if table else "photo",
        photo=rngs.pick(rng, photos),
        surface=rngs.pick(rng, [*TEXTURES, "wood", "wood"]) if table else "",
        horizon=rngs.uniform(rng, 0.35, 0.6),
        mirror=bool(rng.random() < 0.5),
        tint=(tint[0], tint[1], tint[2]),
        offset=(rngs.uniform(rng, 0, 1), rngs.uniform(rng, 0, 1)),
        blur=rngs.uniform(rng, 0.0, 3.0) if not table else rngs.uniform(rng, 2.0, 6.0),
    )
    camera = [
        CameraKey(
            start,
            rngs.uniform(rng, 0.4, 0.6),
            rngs.uniform(rng, 0.42, 0.58),
            rngs.uniform(rng, 1.0, 1.3),
        )
    ]
    t = start
    while t < end:
        whip = rng.random() < 0.15
        t += rngs.uniform(rng, 0.25, 0.45) if whip else rngs.uniform(rng, 1.5, 5.0)
        reach = 0.28 if whip else 0.12
        last = camera[-1]
        camera.append(
            CameraKey(
                min(t, end),
                float(np.clip(last.cx + rngs.uniform(rng, -reach, reach), 0.25, 0.75)),
                float(np.clip(last.cy + rngs.uniform(rng, -reach / 2, reach / 2), 0.35, 0.65)),
                float(np.clip(last.zoom * rngs.uniform(rng, 0.85, 1.2), 1.0, 1.6)),
            )
        )
        if whip:  # hold after a whip, so it reads as a whip rather than a drift
            t += rngs.uniform(rng, 0.5, 1.5)
            camera.append(CameraKey(min(t, end), camera[-1].cx, camera[-1].cy, camera[-1].zoom))
    lights = [LightKey(start, rngs.uniform(rng, 0.75, 1.15), (1.0, 1.0, 1.0))]
    t = start
    while t < end:
        t += rngs.uniform(rng, 1.0, 6.0)
        dim = rng.random() < 0.15  # a light goes off for a moment
        gain = rngs.uniform(rng, 0.45, 0.6) if dim else rngs.uniform(rng, 0.7, 1.25)
        tint = tuple(rngs.uniform(rng, 0.85, 1.15) for _ in range(3))
        lights.append(LightKey(min(t, end), gain, (tint[0], tint[1], tint[2])))
    return Shot(
        start=start,
        end=end,
        background=background,
        camera=tuple(camera),
        shake=rngs.uniform(rng, 0.0, 0.006),
        shake_phase=(
            rngs.uniform(rng, 0, 6.3),
            rngs.uniform(rng, 0, 6.3),
            rngs.uniform(rng, 0, 6.3),
            rngs.uniform(rng, 0, 6.3),
        ),
        lights=tuple(lights),
        noise=rngs.uniform(rng, 0.0, 5.0) if rng.random() < 0.5 else 0.0,
        light_direction=rngs.uniform(rng, -0.8, 0.8),
    )


def _plan_gap(rng: np.random.Generator, duration: float) -> tuple[float, float]:
    length = max(1.5, duration * rngs.uniform(rng, 0.1, 0.2))
    where = rngs.pick(rng, ["start", "middle", "end"])
    if where == "start":
        return (0.0, length)
    if where == "end":
        return (duration - length, duration)
    mid = rngs.uniform(rng, 0.3, 0.7) * duration
    return (max(0.0, mid - length / 2), min(duration, mid + length / 2))


def _choose_products(
    rng: np.random.Generator, catalog: Catalog, products: list[Product], duration: float
) -> list[Product]:
    count = int(np.clip(round(duration / 9) + int(rng.integers(0, 2)), 1, 5))
    chosen = products[:count]
    # Often show a product beside its look-alike: the matcher must keep them apart.
    eligible = {p.product_id for p in products}
    if rng.random() < 0.5 and chosen[0].lookalikes:
        alike = rngs.pick(rng, chosen[0].lookalikes).product_id
        if alike in eligible and all(p.product_id != alike for p in chosen):
            chosen = [*chosen[: max(1, count - 1)], catalog.product(alike)]
    return chosen


def _find_span(
    rng: np.random.Generator,
    shots: tuple[Shot, ...],
    gap: tuple[float, float],
    placed: list[Appearance],
    duration: float,
    avoid_gap: bool,
) -> tuple[float, float] | None:
    for _ in range(40):
        shot = shots[int(rng.integers(len(shots)))]
        length = shot.end - shot.start
        if length < 1.5:
            continue
        span = rngs.uniform(rng, 1.5, min(12.0, length))
        start = shot.start + rngs.uniform(rng, 0.0, length - span)
        end = start + span
        if avoid_gap and start < gap[1] and end > gap[0]:
            continue
        busy = sum(1 for a in placed if a.start < end and a.end > start)
        if busy >= 3:
            continue
        return (round(start, 3), round(min(end, duration), 3))
    return None


def _appearance(
    rng: np.random.Generator,
    object_id: int,
    kind: str,
    product_id: str | None,
    design: Design,
    span: tuple[float, float],
    fmt: Format,
) -> Appearance:
    start, end = span
    length = end - start
    base = rngs.uniform(rng, 0.14, 0.4)
    turntable = rng.random() < 0.3
    spin = rng.random() < 0.1
    yaw0 = rngs.uniform(rng, -1.0, 1.0)
    middle = max(1, min(4, int(length / 2.5)))
    entry = min(0.35 * length, rngs.uniform(rng, 0.5, 1.5))
    exit_ = min(0.35 * length, rngs.uniform(rng, 0.5, 1.5))
    times = np.linspace(start + entry, end - exit_, middle)
    keys: list[Key] = []
    for k, t in enumerate(times):
        along = (t - start) / length
        yaw = (
            -1.0 + 2.0 * along
            if turntable
            else float(np.clip(yaw0 + rngs.uniform(rng, -0.5, 0.5), -1, 1))
        )
        angle = (360.0 * along if spin else 0.0) + rngs.uniform(rng, -20.0, 20.0)
        keys.append(
            Key(
                float(t),
                Pose(
                    rngs.uniform(rng, 0.2, 0.8),
                    rngs.uniform(rng, 0.28, 0.75),
                    base * rngs.uniform(rng, 0.8, 1.2),
                    angle,
                    yaw,
                ),
            )
        )
        if k == 0 and len(times) == 1:
            keys.append(Key(float(t) + 1e-3, keys[-1].pose))
    first, last = keys[0].pose, keys[-1].pose
    keys.insert(0, Key(start, _entry_pose(rng, first)))
    keys.append(Key(end, _entry_pose(rng, last)))
    return Appearance(
        object_id=object_id,
        kind=kind,
        product_id=product_id,
        design=design,
        start=start,
        end=end,
        keys=tuple(keys),
        layer=int(rng.integers(0, 100)),
        light=rngs.uniform(rng, -0.8, 0.8),
    )


def _entry_pose(rng: np.random.Generator, pose: Pose) -> Pose:
    """Where an object comes from (or goes to): off an edge, the same place (it pops),
    or the same place but small (it grows or shrinks)."""
    how = rngs.pick(rng, ["slide", "slide", "pop", "grow"])
    if how == "slide":
        edge = rngs.pick(rng, ["left", "right", "bottom", "top"])
        x, y = pose.x, pose.y
        if edge == "left":
            x = -0.45
        elif edge == "right":
            x = 1.45
        elif edge == "bottom":
            y = 1.5
        else:
            y = -0.5
        return Pose(x, y, pose.size, pose.angle + rngs.uniform(rng, -30, 30), pose.yaw)
    if how == "grow":
        return Pose(pose.x, pose.y, pose.size * 0.25, pose.angle, pose.yaw)
    return pose


def _occluder(rng: np.random.Generator, target: Appearance) -> Occluder:
    """Something in the foreground passes in front of a product."""
    length = min(target.end - target.start, rngs.uniform(rng, 0.8, 2.5))
    start = target.start + rngs.uniform(rng, 0.0, target.end - target.start - length)
    middle = pose_at(target.keys, start + length / 2)
    kind = rngs.pick(rng, ["arm", "leaf", "pole"])
    colour = {
        "arm": rngs.pick(rng, [(224, 172, 140), (160, 110, 80), (110, 70, 50), (240, 200, 170)]),
        "leaf": (40, 90, 40),
        "pole": rngs.pick(rng, [(30, 30, 32), (90, 90, 96), (200, 200, 196)]),
    }[kind]
    from_left = rng.random() < 0.5
    sweep = 0.9 if from_left else -0.9
    size = rngs.uniform(rng, 0.6, 1.2)
    angle = rngs.uniform(rng, -30, 30)
    return Occluder(
        kind=kind,
        start=start,
        end=start + length,
        keys=(
            Key(start, Pose(middle.x - sweep, middle.y, size, angle, 0.0)),
            Key(start + length, Pose(middle.x + sweep, middle.y, size, angle, 0.0)),
        ),
        colour=colour,
        blur=rngs.uniform(rng, 1.0, 5.0),
    )


def distractor_design(rng: np.random.Generator, catalog: Catalog) -> Design:
    """An object no shop sells. Some are plainly other things (balls, plants, books, toy
    cars, clocks); some are near misses: a catalog shape in a colour no shop sells it in,
    or a product family in a shape no shop has."""
    roll = rng.random()
    colours = list(COLOURS.values())
    geometry = tuple(float(x) for x in rng.uniform(0, 1, 4))
    geom = (geometry[0], geometry[1], geometry[2], geometry[3])
    body = rngs.pick(rng, colours)
    pattern = rngs.pick(rng, PATTERNS)
    if roll < 0.3 and catalog.products:
        template = rngs.pick(rng, list(catalog.products)).design
        return Design(
            family=template.family,
            geometry=template.geometry,
            body=rngs.pick(rng, list(DISTRACTOR_COLOURS.values())),
            accent=template.accent,
            pattern=template.pattern,
            pattern_colour=template.pattern_colour,
            pattern_scale=template.pattern_scale,
            emblem=template.emblem,
        )
    if roll < 0.45:
        family = rngs.pick(rng, PRODUCT_FAMILIES)
        body = rngs.pick(rng, list(DISTRACTOR_COLOURS.values()))
    else:
        family = rngs.pick(rng, DISTRACTOR_FAMILIES)
    emblem = ""
    if rng.random() < 0.3:
        emblem = f"{rngs.pick(rng, EMBLEMS)}:{chr(65 + int(rng.integers(26)))}"
    return Design(
        family=family,
        geometry=geom,
        body=body,
        accent=rngs.pick(rng, colours),
        pattern=pattern,
        pattern_colour=rngs.pick(rng, colours),
        pattern_scale=rngs.uniform(rng, 0, 1),
        emblem=emblem,
    )
